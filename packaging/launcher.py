"""Entry script of the frozen app: the `photosearch` command (no arguments opens the window)."""

import multiprocessing
import sys

from photosearch.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # photos decode in worker processes (spawned when frozen)
    sys.exit(main())
