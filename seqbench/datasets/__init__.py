"""One file per data set, each registering itself (``seqbench.data.declare``) with its config
schema beside it; ``conf/dataset/<name>.yaml`` holds its defaults. Adding a file here and a YAML
there adds a data set."""
