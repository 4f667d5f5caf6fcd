"""`python -m fasterapi` runs the command line."""

from fasterapi.cli import main

main()
