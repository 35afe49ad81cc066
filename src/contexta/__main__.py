"""`python -m contexta`: the `contexta` command line."""

import sys

from contexta.cli import main

if __name__ == "__main__":
    sys.exit(main())
