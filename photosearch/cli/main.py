"""The `photosearch` command line: a thin shell over Library. Only this layer prints or exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from photosearch.cli import text_commands
from photosearch.cli.command_line import add_search_command, positive_int, root_parser
from photosearch.cli.duplicates_command import add_duplicates_command
from photosearch.cli.served_search import ask_running_process, parse_search
from photosearch.errors import PhotosearchError
from photosearch.files.photo_files import display_path

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
SAMPLE_QUERY = "a cat"
PATH_SHOWN = 160  # characters of a path shown in a message; longer ones keep start and end


# True in the `photosearch` process itself (run()), never when main() is called as a function
_ENDS_THE_PROCESS = False


def run() -> None:
    """The `photosearch` command: main(), and the process ends with its exit code."""
    global _ENDS_THE_PROCESS
    _ENDS_THE_PROCESS = True
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    _exact_path_output()
    search = parse_search(argv)  # None: another command, --help or a bad argument
    if search is not None:
        served = ask_running_process(search)  # the app or `watch` has the library open
        if served is not None:
            return served
    parser = build_parser(plugin_commands=search is None)  # a search needs none of theirs
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "language", None):  # read by the encoder (photosearch.models.text)
        os.environ["PHOTOSEARCH_LANGUAGE"] = args.language
    if not getattr(args, "handler", None):
        if args.command is None:
            return _no_command(parser, args)
        parser.print_help()
        return EXIT_ERROR
    try:
        return _run_handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted; the next run resumes where this one stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PhotosearchError as exc:
        print(f"photosearch: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(
            f"photosearch: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return EXIT_ERROR
    except Exception as exc:  # SQLite's own errors: one line, never a traceback
        message = _database_message(exc, args)
        if message is None:
            raise
        print(f"photosearch: {message}", file=sys.stderr)
        return EXIT_ERROR


READ_RETRIES = 3


def _run_handler(args: argparse.Namespace) -> int:
    """Run the command; a reading command retries a transient SQLite I/O error (e.g. a WAL file
    removed under a running index) a few times before reporting it."""
    attempts = READ_RETRIES if getattr(args, "reads_only", False) else 1
    for attempt in range(1, attempts + 1):
        try:
            return int(args.handler(args) or 0)
        except Exception as exc:
            if attempt == attempts or not _transient(exc):
                raise
            logging.getLogger(__name__).info("retrying after: %s", exc)
            time.sleep(0.5 * attempt)
    return EXIT_ERROR  # not reached


def _transient(exc: BaseException) -> bool:
    import sqlite3

    original = getattr(exc, "orig", exc)
    return isinstance(original, sqlite3.OperationalError) and "disk I/O error" in str(original)


def _database_message(exc: BaseException, args: argparse.Namespace) -> str | None:
    """The one-line message for an SQLite error, or None when ``exc`` is not one."""
    import sqlite3

    from photosearch.catalog.database import damage_from

    original = getattr(exc, "orig", exc)
    if not isinstance(original, sqlite3.Error):
        return None
    library = args.library or _default_library()
    damaged = damage_from(original, library / "catalog.sqlite")
    if damaged is not None:
        return str(damaged)
    if "disk is full" in str(original):
        return (
            f"the disk holding {library} is full ({original}); nothing was lost: free some "
            f"space and run the command again"
        )
    if "readonly" in str(original) or "read-only" in str(original):
        return (
            f"the catalog in {library} cannot be written ({original}); searching and "
            f"status work, indexing and changes need write access"
        )
    return (
        f"the catalog in {library} could not be read ({original}); if another photosearch "
        f"process is writing to it, try again when it has finished, else run "
        f"`photosearch repair`"
    )


def _default_library() -> Path:
    from photosearch.paths import default_library_dir

    return default_library_dir()


def _exact_path_output() -> None:
    """Print file names whose bytes are not UTF-8 as those very bytes (so the output can be
    piped to other tools and still name the file), and never fail a message on them."""
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed or unusual stream
                reconfigure(errors=errors)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text}")
    return value


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The full command line; ``plugin_commands`` False leaves out the commands plugins add
    (loading them costs a scan of the installed packages and their imports)."""
    parser, commands, common = root_parser()
    _add_folder_commands(commands, common)
    _add_index_commands(commands, common)
    _add_search_command(commands, common)
    _add_library_commands(commands, common)
    _add_model_commands(commands, common)
    _add_demo_command(commands, common)
    add_duplicates_command(commands, common, _open)  # photosearch duplicates [--json]
    if plugin_commands:
        _add_plugin_commands(commands, common)
    return parser


def _add_folder_commands(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``folders add | remove | list | ignore``."""
    folders = commands.add_parser("folders", parents=[common], help="manage library folders")
    folder_commands = folders.add_subparsers(dest="folders_command", metavar="ACTION")
    add = folder_commands.add_parser("add", parents=[common], help="add a photo folder")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _add_wait_option(add)
    add.set_defaults(handler=_folders_add)
    remove = folder_commands.add_parser(
        "remove", parents=[common], help="forget a folder (its photos are not touched)"
    )
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _add_wait_option(remove)
    remove.set_defaults(handler=_folders_remove)
    listing = folder_commands.add_parser("list", parents=[common], help="list folders")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_folders_list, reads_only=True)
    ignore = folder_commands.add_parser(
        "ignore",
        parents=[common],
        help="leave out files and folders matching a pattern",
        description="Patterns are shell globs matched against a file or folder name "
        "(e.g. '*.tmp', 'Screenshots') or its full path (e.g. '/photos/private/*'). "
        "They apply to `index` and `watch` (restart a running watch). "
        "With no pattern, lists the saved ones.",
    )
    ignore.add_argument("patterns", nargs="*", metavar="PATTERN")
    ignore.add_argument("--remove", action="store_true", help="remove these patterns instead")
    _add_wait_option(ignore)
    ignore.set_defaults(handler=_folders_ignore)


def _add_index_commands(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``index`` and ``watch``: the two ways photos get into the library."""
    index = commands.add_parser(
        "index",
        parents=[common],
        help="scan folders and encode new or changed photos (Ctrl-C stops; rerun resumes)",
    )
    index.add_argument("--json", action="store_true", help="print a JSON summary")
    index.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="photos per encoder call (larger uses more memory, no faster on CPU)",
    )
    index.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another process's indexing to finish",
    )
    text_commands.add_index_options(index)
    index.set_defaults(handler=_index)

    watch = commands.add_parser(
        "watch",
        parents=[common],
        help="keep the library up to date while running: index new, changed, moved and "
        "deleted photos as they happen (Ctrl-C stops)",
        description="Catches up with the folders, then follows them. Files still being copied "
        "are indexed once complete; moved photos keep their vectors; a folder on a "
        "disk that goes away is marked offline, not emptied. Leave files out with "
        "`photosearch folders ignore PATTERN`.",
    )
    watch.add_argument(
        "--settle",
        type=_seconds,
        default=0.75,
        metavar="SECONDS",
        help="a file is read once unchanged for this long (default 0.75)",
    )
    watch.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="photos per encoder call (larger uses more memory)",
    )
    watch.add_argument("--json", action="store_true", help="print one JSON status per line")
    watch.set_defaults(handler=_watch)


def _add_search_command(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``search`` (photosearch.cli.command_line: a running process's search parses it alone)."""
    add_search_command(commands, common, _search)


def _add_library_commands(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``status``, ``repair`` and ``eval``."""
    status = commands.add_parser(
        "status",
        parents=[common],
        help="library counts, the model in use, and each model's vector set with its coverage",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--failures",
        type=int,
        default=10,
        metavar="N",
        help="list up to N failed files with their reasons (default 10)",
    )
    status.set_defaults(handler=_status, reads_only=True)
    text_commands.add_command(commands, common, _open, _writing)

    repair = commands.add_parser(
        "repair",
        parents=[common],
        help="check the catalog and vector graphs; restore a damaged catalog from its newest "
        "good backup or rebuild it, reusing every vector that can be trusted",
        description="Checks catalog.sqlite with SQLite's integrity_check and each vector graph "
        "against its checksum. A damaged catalog is moved aside (never deleted), "
        "replaced by the newest backup that passes integrity_check (or an empty "
        "one), completed with what can still be read from the damaged file, then "
        "the folders are indexed: only photos without a trusted vector are encoded.",
    )
    _add_wait_option(repair)
    repair.set_defaults(handler=_repair)

    evaluate = commands.add_parser(
        "eval",
        parents=[common],
        help="Recall@1/5/10 on a captions.jsonl, in a throwaway library, with the library's model",
    )
    evaluate.add_argument("captions", type=Path, metavar="CAPTIONS.jsonl")
    evaluate.add_argument("--split", default=None, help="only this split (e.g. test)")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=_eval)


def _add_model_commands(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``models ...``: the built-in actions, then those of models_commands."""
    models = commands.add_parser(
        "models", parents=[common], help="list, pull, import, build, pick or remove models"
    )
    model_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    mlist = model_commands.add_parser("list", parents=[common], help="installed and offered")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(handler=_models_list)
    build = model_commands.add_parser(
        "build",
        parents=[common],
        help="build a model bundle offered by a plugin (default model when no name is given)",
    )
    build.add_argument("name", nargs="?", default=None)
    build.add_argument(
        "--force",
        action="store_true",
        help="build again even if installed (after upgrading its plugin); when the "
        "bundle's identity changes, libraries re-encode photos on the next `index`",
    )
    build.set_defaults(handler=_models_build)
    use = model_commands.add_parser(
        "use",
        parents=[common],
        help="switch the library to model NAME",
        description="Searches keep using the current model while `index`, `watch` or the "
        "desktop app encode the photos for NAME; the library switches over by "
        "itself once NAME covers them (at once when it already does). Choosing the "
        "current model cancels a pending switch. Other models' vectors are kept "
        "until `photosearch models drop`.",
    )
    use.add_argument("name")
    _add_wait_option(use)
    use.set_defaults(handler=_models_use)
    drop = model_commands.add_parser(
        "drop",
        parents=[common],
        help="delete one model's vectors from the library",
        description="Deletes a vector set (its catalog vectors and graph files), named by model "
        "or by identity as `photosearch status` lists them. The active model's set "
        "and a pending switch's are refused. Nothing else is ever dropped.",
    )
    drop.add_argument("name", metavar="NAME|IDENTITY")
    _add_wait_option(drop)
    drop.set_defaults(handler=_models_drop)
    rerank = model_commands.add_parser(
        "rerank",
        parents=[common],
        help="re-rank text searches' top K results with MODEL (e.g. the teacher of the "
        "library's model), or `off`; saved for the library",
    )
    rerank.add_argument("name", metavar="MODEL|off")
    rerank.add_argument(
        "--depth",
        type=positive_int,
        default=50,
        metavar="K",
        help="how many top results are re-scored (default 50)",
    )
    rerank.add_argument(
        "--fill",
        action="store_true",
        help="compute MODEL's vectors of every photo now (else on first need)",
    )
    _add_wait_option(rerank)
    rerank.set_defaults(handler=_models_rerank)
    provider = model_commands.add_parser(
        "provider",
        parents=[common],
        help="show or set the ONNX Runtime execution provider (auto, CPU, CUDA, ...)",
    )
    provider.add_argument("name", nargs="?", help="auto, or one of the names listed")
    _add_wait_option(provider)
    provider.set_defaults(handler=_models_provider)
    from photosearch.cli.models_commands import add_models_commands

    add_models_commands(model_commands, common)  # pull, catalogue, info, remove, import


def _add_demo_command(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """``demo``."""
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="add a folder (default: the bundled sample photos), index it and search it",
    )
    demo.add_argument("query", nargs="?", default=None, help=f'default: "{SAMPLE_QUERY}"')
    demo.add_argument(
        "--photos",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="photo folder to index (default: the sample photos under resources/, "
        "or ../shared/data/flickr8k-1k/images when present)",
    )
    demo.add_argument("-k", type=positive_int, default=5)
    demo.set_defaults(handler=_demo)


def _add_plugin_commands(commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    """Let plugins add sub-commands (entry-point group ``photosearch.commands``).

    Each entry point is a callable ``register(subparsers, common_parent)`` that adds parsers
    with ``parents=[common_parent]`` and sets ``handler`` to a function taking the parsed args
    (``args.library``, ``args.models_dir``, ``args.model`` are there). A plugin that fails to
    load is skipped with a warning, never taking the CLI down.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group="photosearch.commands"):
        try:
            entry.load()(commands, common)
        except Exception as exc:
            print(f"photosearch: plugin command {entry.name!r} skipped: {exc}", file=sys.stderr)


def _add_wait_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another process's indexing to finish",
    )


def _open(args: argparse.Namespace, readonly: bool = False, one_shot: bool = False):  # noqa: ANN202
    """The library; ``readonly`` for commands that only read (nothing is written to it),
    ``one_shot`` for a command that runs one search (Library's one_shot)."""
    from photosearch.library.facade import Library, default_library_dir

    return Library(
        args.library or default_library_dir(),
        models_dir=args.models_dir,
        model=args.model,
        threads=args.threads,
        model_progress=lambda message: print(message, file=sys.stderr),
        readonly=readonly,
        one_shot=one_shot,
    )


def _writing(library, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """Hold the library's write lock for a command that changes it: another process's `index`
    is never changed under it (waits up to --wait seconds, saying so, like `index`)."""
    library.check_writable()
    return library.writing(getattr(args, "wait", 0.0), _waiting_message)


def _waiting_message(pid: int | None) -> None:
    print(
        f"waiting for another photosearch process (pid {pid}) to finish indexing...",
        file=sys.stderr,
    )


def _no_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`photosearch` alone opens the desktop app when PySide6 is installed."""
    try:
        from photosearch.gui import run_gui
    except ImportError:
        parser.print_help()
        return EXIT_ERROR
    from importlib.util import find_spec

    if find_spec("PySide6") is None:
        print(
            "photosearch: the desktop app needs PySide6: pip install 'photosearch[gui]'; "
            "see `photosearch --help` for the command line",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return int(run_gui(library_dir=args.library, models_dir=args.models_dir, serve=serve_searches))


# --- folders -------------------------------------------------------------------------------


def _folders_add(args: argparse.Namespace) -> int:
    with _open(args) as library, _writing(library, args):
        for path in args.paths:
            info = library.add_folder(path)
            print(f"added {info.path}; run `photosearch index` to index it")
    return 0


def _folders_remove(args: argparse.Namespace) -> int:
    with _open(args) as library, _writing(library, args):
        for path in args.paths:
            dropped = library.remove_folder(path)
            print(f"removed {path} ({dropped} photos forgotten; files untouched)")
    return 0


def _folders_list(args: argparse.Namespace) -> int:
    with _open(args, readonly=True) as library:
        folders = library.folders()
    if args.json:
        print(json.dumps([asdict(f) for f in folders], indent=2))
    elif not folders:
        print("no folders yet: `photosearch folders add PATH`")
    for folder in folders if not args.json else []:
        state = "" if folder.online else "  [offline]"
        print(f"{folder.path}  {folder.photos} photos, {folder.failed} failed{state}")
    return 0


# --- index ---------------------------------------------------------------------------------


def _index(args: argparse.Namespace) -> int:
    from photosearch.indexing.progress import ProgressBar

    with _open(args) as library:
        report = _run_index(library, ProgressBar("encoding"), args.wait, args.batch_size)
        searched_with = library.model_name
        reading = None if report.encoding.stopped else text_commands.run_stage(library, args)
    scan, encoding = report.scan, report.encoding
    summary = {
        "added": len(scan.changes.added),
        "changed": len(scan.changes.changed),
        "moved": scan.changes.moved,
        "removed": scan.changes.removed,
        "duplicates": scan.changes.duplicates,
        "touched": scan.changes.touched,
        "encoded": encoding.encoded,
        "failed": encoding.failed,
        "vanished": encoding.vanished,
        "offline_folders": scan.offline_folders,
        "unreadable": [{"path": p, "reason": r} for p, r in scan.unreadable],
        "scan_seconds": round(scan.seconds, 3),
        "encode_seconds": round(encoding.seconds, 3),
        "stopped": encoding.stopped,
    }
    if reading is not None:
        summary["text_in_photos"] = text_commands.summary_of(reading)
    switch = report.switch
    if switch is not None:
        summary["switch"] = {
            "model": switch.model,
            "identity": switch.identity,
            "encoded": switch.encoding.encoded,
            "failed": switch.encoding.failed,
            "seconds": round(switch.encoding.seconds, 3),
            "remaining": switch.remaining,
            "switched": switch.switched,
        }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"scanned in {scan.seconds:.2f}s: {summary['added']} new, {summary['changed']} "
            f"changed, {summary['moved']} moved, {summary['removed']} removed; encoded "
            f"{encoding.encoded} in {encoding.seconds:.1f}s, {encoding.failed} failed"
            + (" (stopped early; run again to finish)" if encoding.stopped else "")
        )
        for folder in scan.offline_folders:
            print(f"  offline (kept, not scanned): {folder}")
        for path, reason in scan.unreadable[:20]:
            print(f"  skipped {display_path(path, PATH_SHOWN)}: {reason}")
        for path, reason in scan.changes.errors[:20]:
            print(f"  not read: {display_path(path, PATH_SHOWN)}: {reason}")
        if encoding.failed:
            print("  see failures with `photosearch status`")
        if switch is not None:
            print(
                f"encoded {switch.encoding.encoded} for {switch.model} in "
                f"{switch.encoding.seconds:.1f}s; "
                + (
                    f"switched to {switch.model}: searches use it now"
                    if switch.switched
                    else f"{switch.remaining} left (searches use {searched_with} until "
                    f"then; run again to go on)"
                )
            )
        if reading is not None:
            print(text_commands.describe(reading))
    stopped = (
        encoding.stopped
        or (switch is not None and switch.encoding.stopped)
        or (reading is not None and reading.stopped)
    )
    return EXIT_INTERRUPTED if stopped else 0


def _run_index(library, progress, wait: float, batch_size: int | None):  # noqa: ANN001, ANN202
    """Index with Ctrl-C handled as 'finish this batch, save, stop' (a second Ctrl-C aborts)."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(_signum, _frame) -> None:  # noqa: ANN001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this batch (Ctrl-C again to abort now)...", file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
    try:
        return library.index(
            progress=progress,
            should_stop=stop.is_set,
            lock_wait_s=wait,
            on_lock_wait=_waiting_message,
            batch_size=batch_size,
        )
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


def _watch(args: argparse.Namespace) -> int:
    """Run the watcher in the foreground until SIGINT/SIGTERM, then stop cleanly (save)."""
    from photosearch.library.watch_service import WatchService, WatchStatus

    stop = threading.Event()

    def request_stop(_signum, _frame) -> None:  # noqa: ANN001
        stop.set()

    def show(status: WatchStatus) -> None:
        if args.json:
            data = asdict(status)
            print(json.dumps(data, default=str), flush=True)
        elif status.message:
            stamp = datetime.now().strftime("%H:%M:%S")
            print(f"{stamp} {status.state}: {status.message}", flush=True)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _open(args) as library:
            if not library.folders():
                print("no folders yet: `photosearch folders add PATH`", file=sys.stderr)
                return EXIT_ERROR
            service = WatchService(
                library, on_status=show, settle_s=args.settle, batch_size=args.batch_size
            )
            service.start()
            server = serve_searches(library)
            fill = _fill_rerank_vectors_while_idle(library, service)
            try:
                while not stop.wait(0.5):
                    if service.status.state == "failed":
                        break
            finally:
                if server is not None:
                    server.close()
                if fill is not None:
                    fill.stop()
                service.stop()
            if service.status.state == "failed":
                print(f"photosearch: {service.status.error}", file=sys.stderr)
                return EXIT_ERROR
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _fill_rerank_vectors_while_idle(library, service):  # noqa: ANN001, ANN202
    """When the library re-ranks, compute the re-ranking model's vectors of its photos while
    the watcher has nothing to do (photosearch.search.rerank.IdleFill); None when it does not."""
    from photosearch.search.rerank import IdleFill, library_photos

    reranker = library.settings.reranker
    if reranker is None:
        return None
    return IdleFill(
        reranker, lambda: library_photos(library), lambda: service.status.state != "watching"
    ).start()


def _folders_ignore(args: argparse.Namespace) -> int:
    with _open(args, readonly=not args.patterns) as library:
        patterns = list(library.settings.ignore_patterns())
        if args.remove:
            patterns = [p for p in patterns if p not in args.patterns]
        else:
            patterns += [p for p in args.patterns if p not in patterns]
        if args.patterns:
            with _writing(library, args):
                library.settings.set_ignore_patterns(patterns)
    if not patterns:
        print("no ignore patterns")
    for pattern in patterns:
        print(pattern)
    return 0


# --- search --------------------------------------------------------------------------------


def _search_query(args: argparse.Namespace):  # noqa: ANN202 - a search.SearchQuery
    from photosearch.search.query import SearchQuery, with_dates

    query = SearchQuery(
        text=args.query,
        negatives=tuple(args.negatives),
        like=args.like,
        k=args.k,
        folder=args.folder,
        after=args.after,
        before=args.before,
        camera=args.camera,
        place=args.place,
        all_copies=args.all_copies,
    )
    if not args.no_dates:  # issue 20: "beach summer 2019" searches "beach" in that summer
        query = with_dates(query)
    return query


def _search(args: argparse.Namespace) -> int:
    if args.like is not None and not os.path.lexists(args.like):
        raise PhotosearchError(f"--like: no such file: {display_path(str(args.like))}")
    if args.folder is not None and not args.folder.is_dir():
        raise PhotosearchError(f"--folder: no such folder: {display_path(str(args.folder))}")
    started = time.perf_counter()
    from photosearch.search.query import check_query

    check_query(_search_query(args))  # before loading the model: answered at once
    # One vector search: the store's matrix answers it at any size, far cheaper than reading
    # the graph (benchmarks/bench_one_shot_search.py); folding copies compares hashes and
    # reads a few vectors, no further search.
    with _open(args, readonly=True, one_shot=True) as library:
        code = _search_in(library, args, started)
    if _ENDS_THE_PROCESS:
        _end_now(code)
    return code


def _end_now(code: int) -> None:
    """End the process after a one-shot search, its output flushed and the library closed:
    Python's own shutdown (unloading ONNX Runtime, NumPy and some 300 modules) took 30-40 ms
    of a 0.3 s search, with nothing left to clean up."""
    with contextlib.suppress(BrokenPipeError):  # output piped into `head` and the like
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def serve_searches(library):  # noqa: ANN001, ANN201 - a Library; a SearchServer or None
    """Answer other processes' `photosearch search` for ``library`` from this process (the
    app, `photosearch watch`); None when the platform or another server rules it out."""
    from photosearch.cli.search_service import SearchServer, ServiceUnavailable

    def run(_command: str, arguments: dict) -> int:
        args = argparse.Namespace(**arguments)
        if args.model not in (None, library.model_name) or args.models_dir not in (
            None,
            library.registry.models_dir,
        ):
            raise ServiceUnavailable("this process searches with another model")
        try:
            return _search_in(library, args, time.perf_counter())
        except PhotosearchError as exc:
            print(f"photosearch: {exc}", file=sys.stderr)
            return EXIT_ERROR

    server = SearchServer(library.directory, run, frozenset({"search"}))
    if not server.start():
        return None
    # the first served search should not pay for creating the text model's session
    threading.Thread(target=_warm_up, args=(library,), daemon=True, name="warm-up").start()
    return server


def _warm_up(library) -> None:  # noqa: ANN001 - a Library
    from photosearch.search.query import SearchQuery

    with contextlib.suppress(Exception):  # a search will report whatever this ran into
        library.search(SearchQuery(text="photo", k=1))


def _search_in(library, args: argparse.Namespace, started: float) -> int:  # noqa: ANN001
    """The search command with ``library`` open (here, or in the process serving it)."""
    from photosearch.search.query import check_query

    query = _search_query(args)
    check_query(query)
    if query.dates is not None:
        print(f"dates: {query.dates.describe()}", file=sys.stderr)
    if args.rerank or args.rerank_depth:  # never set for a served search (NOT_SERVED)
        from photosearch.search.rerank import OFF, open_reranker, reranker_setting

        saved, depth = reranker_setting(library)
        name = args.rerank or saved
        library.settings.use_reranker(
            None if name == OFF else open_reranker(library, name, args.rerank_depth or depth)
        )
    results = library.search(query)
    elapsed = time.perf_counter() - started
    _print_results(results, args.json, elapsed, query.dates)
    return 0


def _print_results(results, as_json: bool, elapsed: float, dates=None) -> None:  # noqa: ANN001
    if as_json:
        from photosearch.search.dates import dates_json

        print(
            json.dumps(
                [
                    {
                        "path": r.path,
                        "score": round(r.score, 4),
                        "width": r.width,
                        "height": r.height,
                        "taken_at": r.taken_at.isoformat() if r.taken_at else None,
                        "camera": r.camera,
                        "place": r.place,
                        "reasons": [reason.as_json() for reason in r.reasons],
                        "similar": list(r.similar),
                        **({"dates": dates_json(dates)} if dates else {}),
                    }
                    for r in results
                ],
                indent=2,
            )
        )
        return
    if not results:
        print("no matches (is the library indexed? see `photosearch status`)")
    for rank, result in enumerate(results, 1):
        worded = any(reason.words for reason in result.reasons)  # "looks like" alone: implied
        why = "; ".join(reason.describe() for reason in result.reasons) if worded else ""
        similar = f"  (+{len(result.similar)} similar)" if result.similar else ""
        print(
            f"{rank:3d}. {result.score:.3f}  {result.path}{similar}" + (f"  [{why}]" if why else "")
        )
    print(f"({len(results)} results in {elapsed * 1000:.0f} ms)", file=sys.stderr)


# --- status --------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    with _open(args, readonly=True) as library:
        status = library.status(failures_limit=max(args.failures, 0))
    if args.json:
        data = asdict(status)
        data["failures"] = [{"path": p, "reason": r} for p, r in status.failures]
        data["skipped"] = [{"path": p, "reason": r} for p, r in status.skipped]
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"library:  {status.library}")
    print(f"model:    {status.model} ({status.model_identity or 'not installed'})")
    if status.target_model:
        print(
            f"switching to {status.target_model}: searches use {status.model} until its "
            f"vectors cover the library (`photosearch index` or `watch` encodes them)"
        )
    print(
        f"photos:   {status.photos} ({status.indexed} indexed, {status.pending} pending, "
        f"{status.failed} failed)"
    )
    print(
        f"index:    {status.index_bytes / 1e6:.1f} MB vectors, "
        f"{status.catalog_bytes / 1e6:.1f} MB catalog"
    )
    for folder in status.folders:
        state = "" if folder.online else "  [offline]"
        print(f"folder:   {folder.path}  ({folder.photos} photos){state}")
    if (line := text_commands.status_line(status.text_in_photos)) is not None:
        print(line)
    for vector_set in status.sets:
        role = "active" if vector_set.active else "target" if vector_set.target else "kept"
        print(
            f"vectors:  {vector_set.name} ({vector_set.identity}) {vector_set.vectors}/"
            f"{vector_set.photos} photos [{role}]"
        )
    for path, reason in status.failures:
        print(f"failed:   {display_path(path, PATH_SHOWN)}: {reason}")
    for path, reason in status.skipped[: max(args.failures, 0)]:
        print(f"skipped:  {display_path(path, PATH_SHOWN)}: {reason}")
    return 0


# --- repair --------------------------------------------------------------------------------


def _repair(args: argparse.Namespace) -> int:
    """Repair the catalog (under the write lock), then check the active model's graph and
    index, which encodes only the photos left without a trusted vector."""
    from photosearch.indexing.progress import ProgressBar
    from photosearch.library.locking import WriteLock
    from photosearch.library.repair import repair_catalog
    from photosearch.paths import CATALOG_FILE, LOCK_FILE, VECTORS_DIR, default_library_dir

    directory = (args.library or default_library_dir()).expanduser().resolve()
    with WriteLock(directory / LOCK_FILE).holding(args.wait, _waiting_message):
        report = repair_catalog(directory, directory / VECTORS_DIR, CATALOG_FILE)
    if report.problem is None:
        print(f"catalog: sound (integrity_check passed): {directory / CATALOG_FILE}")
    else:
        print(f"catalog: damaged ({report.problem})")
        if report.moved_aside:
            print(f"  moved aside (kept, not deleted): {report.moved_aside}")
        print(
            f"  restored from backup {report.restored_from}"
            if report.restored_from
            else "  no good backup: rebuilt from the photo folders"
        )
        print(
            f"  {report.salvaged_photos} photos recovered from the damaged file, "
            f"{report.unreadable_rows} unreadable rows skipped"
        )
        for identity, count in report.reused_vectors.items():
            print(f"  {count} trusted vectors reused for model {identity}")
    with _open(args) as library, _writing(library, args):
        store = library.store
        if store.load_problem:
            print(
                f"vectors: the saved graph was not used ({store.load_problem}); rebuilt "
                f"from the catalog"
            )
            store.save()
        else:
            print(f"vectors: sound ({len(store)} vectors, checksum verified)")
        if report.problem is None:
            return 0
        result = _run_index(library, ProgressBar("encoding"), args.wait, None)
    print(
        f"indexed: {len(result.scan.changes.added)} new photos found, "
        f"{result.encoding.encoded} encoded, {result.encoding.failed} failed"
    )
    return EXIT_INTERRUPTED if result.encoding.stopped else 0


# --- eval ----------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from photosearch.library.evaluation import evaluate

    report = evaluate(
        args.captions,
        args.split,
        models_dir=args.models_dir,
        model=args.model or _library_model(args),
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    t2i, i2t = report.text_to_image, report.image_to_text
    print(
        f"model {report.model}, split {report.split or 'all'}: {report.images} images "
        f"({report.indexed} indexed), {report.captions} captions"
    )
    print("text->image  " + "  ".join(f"{k} {v:5.1f}" for k, v in t2i.items()))
    print("image->text  " + "  ".join(f"{k} {v:5.1f}" for k, v in i2t.items()))
    print(
        f"speed: {report.images_per_s:.1f} images/s indexed, {report.texts_per_s:.1f} texts/s "
        f"encoded, {report.queries_per_s:.0f} searches/s (p50 {report.query_latency_ms_p50:.2f}"
        f" ms, p95 {report.query_latency_ms_p95:.2f} ms)"
    )
    return 0


def _library_model(args: argparse.Namespace) -> str | None:
    """The model `models use` chose for --library, or None when that library does not exist
    (eval then uses the default model)."""
    from photosearch.library.facade import Library
    from photosearch.paths import CATALOG_FILE, default_library_dir

    directory = (args.library or default_library_dir()).expanduser()
    if not (directory / CATALOG_FILE).is_file():
        return None
    with Library(directory, models_dir=args.models_dir) as library:
        return library.models.saved_name()


# --- models --------------------------------------------------------------------------------


def _registry(args: argparse.Namespace):  # noqa: ANN202
    from photosearch.models.providers import ModelRegistry
    from photosearch.paths import default_models_dir

    return ModelRegistry(args.models_dir or default_models_dir())


def _models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    installed = registry.installed()
    offers = registry.offers()
    if args.json:
        print(
            json.dumps(
                {
                    "installed": [{"name": m.name, "path": str(m.path)} for m in installed],
                    "offered": [asdict(o) for o in offers],
                },
                indent=2,
            )
        )
        return 0
    names = {m.name for m in installed}
    for model in installed:
        print(f"installed  {model.name}  {model.path}")
    for offer in offers:
        if offer.name not in names:
            how = (
                "download with `photosearch models pull"
                if offer.needs_network
                else "build with `photosearch models build"
            )
            mark = " (default)" if offer.default else ""
            print(f"available  {offer.name}{mark}  [{how} {offer.name}`]  {offer.description}")
    return 0


def _models_build(args: argparse.Namespace) -> int:
    registry = _registry(args)
    name = args.name or args.model or registry.default_model_name()
    if registry.path_of(name) and not args.force:
        print(f"{name} is already installed at {registry.path_of(name)}")
        return 0
    from photosearch.models.bundle import bundle_identity

    installed = registry.path_of(name)
    before = bundle_identity(installed) if installed else None
    print(f"building {name}...", file=sys.stderr)
    started = time.perf_counter()
    report = lambda m: print(f"  {m}", file=sys.stderr)  # noqa: E731
    path = (
        registry.rebuild(name, progress=report, allow_network=True)
        if args.force
        else registry.ensure(name, progress=report, allow_network=True)
    )
    print(f"built {name} in {time.perf_counter() - started:.0f}s: {path}")
    after = bundle_identity(path)
    if before == after:
        print(f"same identity as before ({after}): libraries keep their vectors")
    elif before is not None:
        print(f"new identity {after} (was {before}): libraries encode their photos again")
    return 0


def _models_use(args: argparse.Namespace) -> int:
    with _open(args) as library, _writing(library, args):
        state = library.use_model(args.name)
    if state.cancelled:
        print(f"cancelled the switch to {state.cancelled} (its vectors so far are kept)")
    if state.switched:
        print(
            f"switched to {state.active}"
            + (": its vectors already cover the library" if state.covered else "")
        )
    elif state.target is None:
        pending = (
            f"; {state.pending} photos not yet encoded (run `photosearch index`)"
            if state.pending
            else ""
        )
        print(f"the library uses {state.active}{pending}")
    else:
        print(
            f"switching to {state.target}: {state.covered} photos encoded, {state.pending} to "
            f"go. Searches keep using {state.active} until then; `photosearch index` (or "
            f"`watch`, or the desktop app) encodes them and switches over when done"
        )
    return 0


def _models_drop(args: argparse.Namespace) -> int:
    with _open(args) as library, _writing(library, args):
        dropped = library.drop_model_set(args.name)
    print(f"dropped {dropped.identity}: {dropped.vectors} vectors, {len(dropped.files)} files")
    return 0


def _models_rerank(args: argparse.Namespace) -> int:
    from photosearch.search.rerank import save_setting

    with _open(args) as library, _writing(library, args):
        reranker = save_setting(library, args.name, args.depth)
        print(
            f"text searches re-rank their top {args.depth} with {reranker.name}"
            if reranker
            else "re-ranking off"
        )
        if reranker and args.fill:
            from photosearch.search.rerank import library_photos

            count = reranker.fill(library_photos(library))
            print(f"{count} photos encoded for re-ranking (the rest were cached)")
    return 0


def _models_provider(args: argparse.Namespace) -> int:
    from photosearch.models.runtime import AUTO_PROVIDER, local_providers

    with _open(args, readonly=not args.name) as library:
        if args.name:
            with _writing(library, args):
                library.use_provider(args.name)
        print(f"execution provider: {library.provider}")
        print(f"available here: {', '.join([AUTO_PROVIDER, *local_providers()])}")
    return 0


# --- demo ----------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from photosearch.indexing.progress import ProgressBar

    folder = args.photos or _sample_folder()
    query = args.query or SAMPLE_QUERY
    with _open(args) as library:
        known = {f.path for f in library.folders()}
        if str(folder.resolve()) not in known:
            try:
                library.add_folder(folder)
            except PhotosearchError as exc:
                print(f"note: {exc}", file=sys.stderr)
        print(f"library {library.directory}, model {library.model_name}", file=sys.stderr)
        report = _run_index(library, ProgressBar("encoding"), 0.0, 32)
        print(
            f"indexed {folder}: {report.encoding.encoded} encoded now, "
            f"{report.encoding.failed} failed",
            file=sys.stderr,
        )
        from photosearch.search.query import SearchQuery

        started = time.perf_counter()
        results = library.search(SearchQuery(text=query, k=args.k, folder=folder))
        print(f'best matches for "{query}":')
        _print_results(results, False, time.perf_counter() - started)
    return 0


def _sample_folder() -> Path:
    """Flickr8k photos beside the checkout when present, else the bundled samples."""
    root = Path(__file__).resolve().parents[2]  # the checkout: photosearch/cli/main.py
    shared = root.parent / "shared" / "data" / "flickr8k-1k" / "images"
    if shared.is_dir():
        return shared
    for candidate in (
        root / "resources" / "samples",
        Path(sys.prefix) / "share" / "photosearch" / "samples",
    ):
        if candidate.is_dir():
            return candidate
    raise PhotosearchError("no sample photos found; pass --photos FOLDER")


if __name__ == "__main__":
    sys.exit(main())
