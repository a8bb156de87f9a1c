"""`python -m photosearch` runs the CLI."""

from photosearch.cli.main import run

run()
