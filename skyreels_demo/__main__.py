"""`python -m skyreels_demo`: the command line."""

import sys

from skyreels_demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
