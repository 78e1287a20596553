"""``python -m seqbench.search``: the same command as ``seqbench search``."""
from .cli import main

main()
