"""``python -m seqbench.report``: the same command as ``seqbench report``."""
from .cli import main

main()
