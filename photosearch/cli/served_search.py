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


def parse_search(argv: list[str] | None) -> dict[str, Any] | None:
    """``argv`` parsed exactly as the full CLI parses a search (its handler left out), or None
    when it is another command, --help, --version or a bad argument."""
    parser, commands, common = root_parser(_QuietParser)
    add_search_command(commands, common, handler=None)
    try:
        args = parser.parse_args(argv)
    except _NotASearch:
        return None
    return vars(args) if args.command == "search" else None


def ask_running_process(arguments: dict[str, Any]) -> int | None:
    """Print a running process's answer to this search and return its exit status; None when
    the search must run here (nothing serves the library, the service is switched off, an
    option a running process does not honour, a missing --like photo or --folder)."""
    from photosearch.cli.search_service import DISABLE_ENV, ServiceUnavailable, ask

    if os.environ.get(DISABLE_ENV) == "1" or any(arguments.get(name) for name in NOT_SERVED):
        return None
    # a missing --like photo or --folder: the in-process command says so in its own words
    if arguments["like"] is not None and not os.path.lexists(arguments["like"]):
        return None
    if arguments["folder"] is not None and not arguments["folder"].is_dir():
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
