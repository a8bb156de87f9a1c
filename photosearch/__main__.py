"""`python -m photosearch` runs the CLI."""

import sys

from photosearch.cli.main import main

sys.exit(main())
