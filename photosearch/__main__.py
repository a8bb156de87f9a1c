"""`python -m photosearch` runs the CLI."""

import sys

from photosearch.cli import main

sys.exit(main())
