"""The command line's root parser, the options every command takes, and `search`'s arguments.

Standard library only: photosearch.cli.served_search parses a search with these very
definitions before anything of the app is imported (a search a running process answers must
not pay for NumPy, SQLAlchemy or ONNX Runtime), and photosearch.cli.main builds the full
parser from them, so both read a command line alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from photosearch import __version__


class CliParser(argparse.ArgumentParser):
    """argparse, with a bad argument answered in one line (the usage block is in --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_date(text: str) -> datetime:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-07-31")


def root_parser(
    parser_class: type[CliParser] = CliParser,
) -> tuple[CliParser, argparse._SubParsersAction, argparse.ArgumentParser]:
    """The `photosearch` parser with no command yet, its sub-parsers action and the common
    options' parent: commands are added to the action with ``parents=[common]``."""
    common = common_options(suppress=True)
    parser = parser_class(
        prog="photosearch",
        parents=[common_options(suppress=False)],
        description="Find your own photos by typing what is in them. Offline and private.",
        epilog="Run `photosearch COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"photosearch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, commands, common


def common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (sub-commands must not reset
    a value given before them, hence SUPPRESS defaults there)."""

    def default(value):  # noqa: ANN001, ANN202
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--library",
        type=Path,
        default=default(None),
        metavar="DIR",
        help="library directory (default: $PHOTOSEARCH_LIBRARY or the user data directory)",
    )
    common.add_argument(
        "--models-dir",
        type=Path,
        default=default(None),
        metavar="DIR",
        help="where model bundles are kept (default: $PHOTOSEARCH_MODELS or <user data>/models)",
    )
    common.add_argument(
        "--model",
        default=default(None),
        metavar="NAME",
        help="model bundle to use for this command (default: the library's)",
    )
    common.add_argument(
        "--threads", type=positive_int, default=default(None), help="encoder threads"
    )
    common.add_argument(
        "--language",
        default=default(None),
        metavar="LANG",
        help="query language for NLLB models: fr, pt_BR or a FLORES-200 code "
        "(default: $PHOTOSEARCH_LANGUAGE, else the locale, else eng_Latn)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log what happens"
    )
    return common


def add_search_command(
    commands,  # noqa: ANN001 - argparse's private sub-parsers action
    common: argparse.ArgumentParser,
    handler: Callable[[argparse.Namespace], int] | None,
) -> None:
    """``search``; ``handler`` None leaves it unset (a parse that only asks a running process)."""
    search = commands.add_parser(
        "search",
        parents=[common],
        help="search photos by text or by example photo",
        description='Search by text. Words starting with "-" are left out: '
        '"beach -people", "street -\\"red car\\"". --not adds more.',
    )
    search.add_argument("query", nargs="?", default="", help="what is in the photo")
    add_search_options(search)
    search.add_argument(
        "--rerank",
        metavar="MODEL|off",
        default=None,
        help="re-score the top results with this (bigger) model for this search "
        "(default: the library's setting, `photosearch models rerank`)",
    )
    search.add_argument(
        "--rerank-depth",
        type=positive_int,
        default=None,
        metavar="K",
        help="how many top results are re-scored (default 50)",
    )
    search.add_argument(
        "--all-copies",
        action="store_true",
        help="list every near-duplicate copy (default: one per group, with +N similar)",
    )
    search.set_defaults(reads_only=True)
    if handler is not None:
        search.set_defaults(handler=handler)


def add_search_options(search: argparse.ArgumentParser) -> None:
    search.add_argument("-k", type=positive_int, default=20, help="how many results (default 20)")
    search.add_argument(
        "--not",
        dest="negatives",
        action="append",
        default=[],
        metavar="TEXT",
        help="leave out photos like TEXT (repeatable)",
    )
    search.add_argument(
        "--like",
        type=Path,
        default=None,
        metavar="PHOTO",
        help="find photos that look like PHOTO (combinable with text)",
    )
    search.add_argument("--folder", type=Path, default=None, help="only photos under FOLDER")
    search.add_argument(
        "--after",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="taken on or after DATE (YYYY-MM-DD; EXIF time, else file time)",
    )
    search.add_argument(
        "--before",
        type=parse_date,
        default=None,
        metavar="DATE",
        help="taken before DATE (YYYY-MM-DD)",
    )
    search.add_argument("--camera", default=None, help="camera make/model contains this text")
    search.add_argument(
        "--place",
        default=None,
        metavar="NAME",
        help="taken in this town, region or country (from EXIF GPS)",
    )
    search.add_argument(
        "--no-dates", action="store_true", help='search a date in the text as words ("1984 poster")'
    )
    search.add_argument("--json", action="store_true", help="print JSON")
