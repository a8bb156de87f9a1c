"""``python -m photosearch_train STAGE ...``: the train commands without the app's CLI (for
torchrun, or before the entry point is installed)."""

from __future__ import annotations

import argparse
import sys

from photosearch.errors import PhotosearchError
from photosearch_train.commands import STAGE_HELP, _handler, add_recipe_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m photosearch_train")
    parser.add_argument("--models-dir", default=None)
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, text in STAGE_HELP.items():
        sub = stages.add_parser(name, help=text)
        add_recipe_options(sub, name)
        sub.set_defaults(handler=_handler(name))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PhotosearchError as exc:
        print(f"photosearch train: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the same command resumes from the last checkpoint", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a folder without permission: files written so far
        # are whole (photosearch_train.files), so the same command resumes once it is fixed
        where = f": {exc.filename}" if exc.filename else ""
        print(f"photosearch train: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
