"""Entry script of the frozen app: the `photosearch` command (no arguments opens the window)."""

import sys

from photosearch.cli import main

if __name__ == "__main__":
    sys.exit(main())
