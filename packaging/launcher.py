"""Entry script of the frozen app: the `photosearch` command (no arguments opens the window)."""

import multiprocessing

from photosearch.cli.main import run

if __name__ == "__main__":
    multiprocessing.freeze_support()  # photos decode in worker processes (spawned when frozen)
    run()
