"""``python -m seqbench.bench``: the same command as ``seqbench bench``."""
from .cli import main

main()
