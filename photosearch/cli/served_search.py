"""`photosearch search` answered by a running process, asked before the app is imported.

Why: when the app or `photosearch watch` has the library open, the search itself takes
milliseconds there, and what a cold CLI process costs is its own start. Importing the app
(NumPy, SQLAlchemy, ONNX Runtime and the rest) costs a few hundred milliseconds, so this
module reads the command line with the standard library only, asks the serving process
(photosearch.cli.search_service) and prints its answer. Anything else (another command, a
bad argument, --help, a search option a running process does not honour, nobody serving)
returns None and photosearch.cli.main runs the command as always, so messages and output are
those of the in-process command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from photosearch.cli.command_line import CliParser, add_search_command, root_parser

# Options that change the library's re-ranking or the text model's language for the search: a
# running process keeps its own, so these searches run in-process.
NOT_SERVED = ("rerank", "rerank_depth", "language")


class _NotASearch(Exception):
    """The command line is not a plain search (main parses it again and says why)."""


class _QuietParser(CliParser):
    """Parses like the CLI, but prints nothing: help, version and errors are left to main."""

    def error(self, message: str) -> NoReturn:
        raise _NotASearch(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _NotASearch(message or "")

    def print_help(self, file=None) -> NoReturn:  # noqa: ANN001
        raise _NotASearch("help")

    def print_usage(self, file=None) -> NoReturn:  # noqa: ANN001
        raise _NotASearch("usage")

    def _print_message(self, message: str, file=None) -> NoReturn:  # noqa: ANN001
        raise _NotASearch(message)


def search_arguments(argv: list[str] | None) -> dict[str, Any] | None:
    """``argv`` parsed exactly as the full CLI parses a search, or None when it is anything
    else or a search that must run in-process."""
    parser, commands, common = root_parser(_QuietParser)
    add_search_command(commands, common, handler=None)
    try:
        args = parser.parse_args(argv)
    except _NotASearch:
        return None
    if args.command != "search" or any(getattr(args, name, None) for name in NOT_SERVED):
        return None
    # A missing --like photo or --folder: the in-process command says so in its own words.
    if args.like is not None and not os.path.lexists(args.like):
        return None
    if args.folder is not None and not args.folder.is_dir():
        return None
    return vars(args)


def run_served_search(argv: list[str] | None) -> int | None:
    """Print a running process's answer to this search and return its exit status; None when
    this is not a plain search or nothing serves the library (main runs it itself)."""
    from photosearch.cli.search_service import DISABLE_ENV, ServiceUnavailable, ask

    if os.environ.get(DISABLE_ENV) == "1":
        return None
    arguments = search_arguments(argv)
    if arguments is None:
        return None
    try:
        reply = ask(arguments["library"] or _default_library(), "search", arguments)
    except ServiceUnavailable:
        return None
    sys.stdout.write(reply.stdout)
    sys.stderr.write(reply.stderr)
    return reply.exit_status


def _default_library() -> Path:
    from photosearch.paths import default_library_dir

    return default_library_dir()
