"""The `photosearch` command line: a thin shell over Library. Only this layer prints or exits."""

from __future__ import annotations

import argparse
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

from photosearch import __version__
from photosearch.errors import PhotosearchError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
SAMPLE_QUERY = "a cat"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
        return int(args.handler(args) or 0)
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
        print(f"photosearch: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    root_options = _common_options(suppress=False)
    common = _common_options(suppress=True)

    parser = argparse.ArgumentParser(
        prog="photosearch", parents=[root_options],
        description="Find your own photos by typing what is in them. Offline and private.",
        epilog="Run `photosearch COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"photosearch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    folders = commands.add_parser("folders", parents=[common], help="manage library folders")
    folder_commands = folders.add_subparsers(dest="folders_command", metavar="ACTION")
    add = folder_commands.add_parser("add", parents=[common], help="add a photo folder")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.set_defaults(handler=_folders_add)
    remove = folder_commands.add_parser(
        "remove", parents=[common], help="forget a folder (its photos are not touched)")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    remove.set_defaults(handler=_folders_remove)
    listing = folder_commands.add_parser("list", parents=[common], help="list folders")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_folders_list)
    ignore = folder_commands.add_parser(
        "ignore", parents=[common], help="leave out files and folders matching a pattern",
        description="Patterns are shell globs matched against a file or folder name "
                    "(e.g. '*.tmp', 'Screenshots') or its full path (e.g. '/photos/private/*'). "
                    "They apply to `index` and `watch` (restart a running watch). "
                    "With no pattern, lists the saved ones.")
    ignore.add_argument("patterns", nargs="*", metavar="PATTERN")
    ignore.add_argument("--remove", action="store_true", help="remove these patterns instead")
    ignore.set_defaults(handler=_folders_ignore)

    index = commands.add_parser(
        "index", parents=[common],
        help="scan folders and encode new or changed photos (Ctrl-C stops; rerun resumes)")
    index.add_argument("--json", action="store_true", help="print a JSON summary")
    index.add_argument("--batch-size", type=int, default=None,
                       help="photos per encoder call (larger uses more memory, no faster on CPU)")
    index.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait this long for another process's indexing to finish")
    index.set_defaults(handler=_index)

    watch = commands.add_parser(
        "watch", parents=[common],
        help="keep the library up to date while running: index new, changed, moved and "
             "deleted photos as they happen (Ctrl-C stops)",
        description="Catches up with the folders, then follows them. Files still being copied "
                    "are indexed once complete; moved photos keep their vectors; a folder on a "
                    "disk that goes away is marked offline, not emptied. Leave files out with "
                    "`photosearch folders ignore PATTERN`.")
    watch.add_argument("--settle", type=float, default=0.75, metavar="SECONDS",
                       help="a file is read once unchanged for this long (default 0.75)")
    watch.add_argument("--batch-size", type=int, default=None,
                       help="photos per encoder call (larger uses more memory)")
    watch.add_argument("--json", action="store_true", help="print one JSON status per line")
    watch.set_defaults(handler=_watch)

    search = commands.add_parser(
        "search", parents=[common], help="search photos by text or by example photo",
        description='Search by text. Words starting with "-" are left out: '
                    '"beach -people", "street -\\"red car\\"". --not adds more.')
    search.add_argument("query", nargs="?", default="", help="what is in the photo")
    _add_search_options(search)
    search.add_argument("--rerank", metavar="MODEL|off", default=None,
                        help="re-score the top results with this (bigger) model for this search "
                             "(default: the library's setting, `photosearch models rerank`)")
    search.add_argument("--rerank-depth", type=int, default=None, metavar="K",
                        help="how many top results are re-scored (default 50)")
    search.set_defaults(handler=_search)

    status = commands.add_parser("status", parents=[common], help="library counts and model")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--failures", type=int, default=10, metavar="N",
                        help="list up to N failed files with their reasons (default 10)")
    status.set_defaults(handler=_status)

    evaluate = commands.add_parser(
        "eval", parents=[common], help="Recall@1/5/10 on a captions.jsonl, in a throwaway library")
    evaluate.add_argument("captions", type=Path, metavar="CAPTIONS.jsonl")
    evaluate.add_argument("--split", default=None, help="only this split (e.g. test)")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=_eval)

    models = commands.add_parser("models", parents=[common], help="list, build or pick models")
    model_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    mlist = model_commands.add_parser("list", parents=[common], help="installed and offered")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(handler=_models_list)
    build = model_commands.add_parser(
        "build", parents=[common], help="build a model bundle offered by a plugin (default model "
                                        "when no name is given)")
    build.add_argument("name", nargs="?", default=None)
    build.add_argument("--force", action="store_true",
                       help="build again even if installed (after upgrading its plugin); the "
                            "library then re-encodes photos on the next `index`")
    build.set_defaults(handler=_models_build)
    use = model_commands.add_parser("use", parents=[common], help="make NAME the library's model")
    use.add_argument("name")
    use.set_defaults(handler=_models_use)
    rerank = model_commands.add_parser(
        "rerank", parents=[common],
        help="re-rank text searches' top K results with MODEL (e.g. the teacher of the "
             "library's model), or `off`; saved for the library")
    rerank.add_argument("name", metavar="MODEL|off")
    rerank.add_argument("--depth", type=int, default=50, metavar="K",
                        help="how many top results are re-scored (default 50)")
    rerank.add_argument("--fill", action="store_true",
                        help="compute MODEL's vectors of every photo now (else on first need)")
    rerank.set_defaults(handler=_models_rerank)
    provider = model_commands.add_parser(
        "provider", parents=[common],
        help="show or set the ONNX Runtime execution provider (auto, CPU, CUDA, ...)")
    provider.add_argument("name", nargs="?", help="auto, or one of the names listed")
    provider.set_defaults(handler=_models_provider)

    demo = commands.add_parser(
        "demo", parents=[common],
        help="add a folder (default: the bundled sample photos), index it and search it")
    demo.add_argument("query", nargs="?", default=None, help=f'default: "{SAMPLE_QUERY}"')
    demo.add_argument("--photos", type=Path, default=None, metavar="FOLDER",
                      help="photo folder to index (default: the sample photos under resources/, "
                           "or ../shared/data/flickr8k-1k/images when present)")
    demo.add_argument("-k", type=int, default=5)
    demo.set_defaults(handler=_demo)
    _add_plugin_commands(commands, common)
    return parser


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
        except Exception as exc:  # noqa: BLE001 - plugin isolation
            print(f"photosearch: plugin command {entry.name!r} skipped: {exc}", file=sys.stderr)


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (sub-commands must not reset
    a value given before them, hence SUPPRESS defaults there)."""

    def default(value):  # noqa: ANN001, ANN202
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", type=Path, default=default(None), metavar="DIR",
                        help="library directory (default: $PHOTOSEARCH_LIBRARY or the user data "
                             "directory)")
    common.add_argument("--models-dir", type=Path, default=default(None), metavar="DIR",
                        help="where model bundles are kept (default: $PHOTOSEARCH_MODELS or "
                             "<user data>/models)")
    common.add_argument("--model", default=default(None), metavar="NAME",
                        help="model bundle to use for this command (default: the library's)")
    common.add_argument("--threads", type=int, default=default(None), help="encoder threads")
    common.add_argument("--language", default=default(None), metavar="LANG",
                        help="query language for NLLB models: fr, pt_BR or a FLORES-200 code "
                             "(default: $PHOTOSEARCH_LANGUAGE, else the locale, else eng_Latn)")
    common.add_argument("-v", "--verbose", action="store_true", default=default(False),
                        help="log what happens")
    return common


def _add_search_options(search: argparse.ArgumentParser) -> None:
    search.add_argument("-k", type=int, default=20, help="how many results (default 20)")
    search.add_argument("--not", dest="negatives", action="append", default=[], metavar="TEXT",
                        help="leave out photos like TEXT (repeatable)")
    search.add_argument("--like", type=Path, default=None, metavar="PHOTO",
                        help="find photos that look like PHOTO (combinable with text)")
    search.add_argument("--folder", type=Path, default=None, help="only photos under FOLDER")
    search.add_argument("--after", type=_date, default=None, metavar="DATE",
                        help="taken on or after DATE (YYYY-MM-DD; EXIF time, else file time)")
    search.add_argument("--before", type=_date, default=None, metavar="DATE",
                        help="taken before DATE (YYYY-MM-DD)")
    search.add_argument("--camera", default=None, help="camera make/model contains this text")
    search.add_argument("--json", action="store_true", help="print JSON")


def _date(text: str) -> datetime:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-07-31")


def _open(args: argparse.Namespace):  # noqa: ANN202
    from photosearch.library import Library, default_library_dir

    return Library(args.library or default_library_dir(), models_dir=args.models_dir,
                   model=args.model, threads=args.threads,
                   model_progress=lambda message: print(message, file=sys.stderr))


def _no_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`photosearch` alone opens the desktop app when PySide6 is installed."""
    try:
        from photosearch.gui import run_gui
    except ImportError:
        parser.print_help()
        return EXIT_ERROR
    from importlib.util import find_spec

    if find_spec("PySide6") is None:
        print("photosearch: the desktop app needs PySide6: pip install 'photosearch[gui]'; "
              "see `photosearch --help` for the command line", file=sys.stderr)
        return EXIT_ERROR
    return int(run_gui(library_dir=args.library, models_dir=args.models_dir))


# --- folders -------------------------------------------------------------------------------


def _folders_add(args: argparse.Namespace) -> int:
    with _open(args) as library:
        for path in args.paths:
            info = library.add_folder(path)
            print(f"added {info.path}; run `photosearch index` to index it")
    return 0


def _folders_remove(args: argparse.Namespace) -> int:
    with _open(args) as library:
        for path in args.paths:
            dropped = library.remove_folder(path)
            print(f"removed {path} ({dropped} photos forgotten; files untouched)")
    return 0


def _folders_list(args: argparse.Namespace) -> int:
    with _open(args) as library:
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
    from photosearch.progress import ProgressBar

    with _open(args) as library:
        report = _run_index(library, ProgressBar("encoding"), args.wait, args.batch_size)
    scan, encoding = report.scan, report.encoding
    summary = {
        "added": len(scan.changes.added), "changed": len(scan.changes.changed),
        "moved": scan.changes.moved, "removed": scan.changes.removed,
        "duplicates": scan.changes.duplicates, "touched": scan.changes.touched,
        "encoded": encoding.encoded, "failed": encoding.failed,
        "vanished": encoding.vanished, "offline_folders": scan.offline_folders,
        "unreadable": [{"path": p, "reason": r} for p, r in scan.unreadable],
        "scan_seconds": round(scan.seconds, 3), "encode_seconds": round(encoding.seconds, 3),
        "stopped": encoding.stopped,
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
            print(f"  skipped {path}: {reason}")
        if encoding.failed:
            print("  see failures with `photosearch status`")
    return EXIT_INTERRUPTED if encoding.stopped else 0


def _run_index(library, progress, wait: float, batch_size: int | None):  # noqa: ANN001, ANN202
    """Index with Ctrl-C handled as 'finish this batch, save, stop' (a second Ctrl-C aborts)."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(_signum, _frame) -> None:  # noqa: ANN001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this batch (Ctrl-C again to abort now)...", file=sys.stderr)

    def waiting(pid: int | None) -> None:
        print(f"waiting for another photosearch process (pid {pid}) to finish indexing...",
              file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
    try:
        return library.index(progress=progress, should_stop=stop.is_set, lock_wait_s=wait,
                             on_lock_wait=waiting, batch_size=batch_size)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


def _watch(args: argparse.Namespace) -> int:
    """Run the watcher in the foreground until SIGINT/SIGTERM, then stop cleanly (save)."""
    from photosearch.watch_service import WatchService, WatchStatus

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
            service = WatchService(library, on_status=show, settle_s=args.settle,
                                   batch_size=args.batch_size)
            service.start()
            try:
                while not stop.wait(0.5):
                    if service.status.state == "failed":
                        break
            finally:
                service.stop()
            if service.status.state == "failed":
                print(f"photosearch: {service.status.error}", file=sys.stderr)
                return EXIT_ERROR
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _folders_ignore(args: argparse.Namespace) -> int:
    with _open(args) as library:
        patterns = list(library.ignore_patterns())
        if args.remove:
            patterns = [p for p in patterns if p not in args.patterns]
        else:
            patterns += [p for p in args.patterns if p not in patterns]
        if args.patterns:
            library.set_ignore_patterns(patterns)
    if not patterns:
        print("no ignore patterns")
    for pattern in patterns:
        print(pattern)
    return 0


# --- search --------------------------------------------------------------------------------


def _search(args: argparse.Namespace) -> int:
    from photosearch.search import SearchQuery

    if not args.query and args.like is None:
        print("photosearch: give some text to search for, or --like PHOTO", file=sys.stderr)
        return EXIT_ERROR
    query = SearchQuery(text=args.query, negatives=tuple(args.negatives), like=args.like,
                        k=args.k, folder=args.folder, after=args.after, before=args.before,
                        camera=args.camera)
    started = time.perf_counter()
    with _open(args) as library:
        if args.rerank or args.rerank_depth:
            from photosearch.rerank import DEFAULT_DEPTH, OFF, RERANK_MODEL_KEY, open_reranker

            name = args.rerank or library.catalog.get_meta(RERANK_MODEL_KEY) or OFF
            library.use_reranker(None if name == OFF else open_reranker(
                library, name, args.rerank_depth or DEFAULT_DEPTH))
        results = library.search(query)
    elapsed = time.perf_counter() - started
    _print_results(results, args.json, elapsed)
    return 0


def _print_results(results, as_json: bool, elapsed: float) -> None:  # noqa: ANN001
    if as_json:
        print(json.dumps([
            {"path": r.path, "score": round(r.score, 4), "width": r.width, "height": r.height,
             "taken_at": r.taken_at.isoformat() if r.taken_at else None, "camera": r.camera}
            for r in results], indent=2))
        return
    if not results:
        print("no matches (is the library indexed? see `photosearch status`)")
    for rank, result in enumerate(results, 1):
        print(f"{rank:3d}. {result.score:.3f}  {result.path}")
    print(f"({len(results)} results in {elapsed * 1000:.0f} ms)", file=sys.stderr)


# --- status --------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    with _open(args) as library:
        status = library.status(failures_limit=max(args.failures, 0))
    if args.json:
        data = asdict(status)
        data["failures"] = [{"path": p, "reason": r} for p, r in status.failures]
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"library:  {status.library}")
    print(f"model:    {status.model} ({status.model_identity})")
    print(f"photos:   {status.photos} ({status.indexed} indexed, {status.pending} pending, "
          f"{status.failed} failed)")
    print(f"index:    {status.index_bytes / 1e6:.1f} MB vectors, "
          f"{status.catalog_bytes / 1e6:.1f} MB catalog")
    for folder in status.folders:
        state = "" if folder.online else "  [offline]"
        print(f"folder:   {folder.path}  ({folder.photos} photos){state}")
    for identity, count in status.other_models.items():
        print(f"also:     {count} vectors from model {identity}")
    for path, reason in status.failures:
        print(f"failed:   {path}: {reason}")
    return 0


# --- eval ----------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from photosearch.evaluation import evaluate

    report = evaluate(args.captions, args.split, models_dir=args.models_dir, model=args.model)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    t2i, i2t = report.text_to_image, report.image_to_text
    print(f"model {report.model}, split {report.split or 'all'}: {report.images} images "
          f"({report.indexed} indexed), {report.captions} captions")
    print("text->image  " + "  ".join(f"{k} {v:5.1f}" for k, v in t2i.items()))
    print("image->text  " + "  ".join(f"{k} {v:5.1f}" for k, v in i2t.items()))
    print(f"speed: {report.images_per_s:.1f} images/s indexed, {report.texts_per_s:.1f} texts/s "
          f"encoded, {report.queries_per_s:.0f} searches/s (p50 {report.query_latency_ms_p50:.2f}"
          f" ms, p95 {report.query_latency_ms_p95:.2f} ms)")
    return 0


# --- models --------------------------------------------------------------------------------


def _registry(args: argparse.Namespace):  # noqa: ANN202
    from photosearch.library import default_models_dir
    from photosearch.models.providers import ModelRegistry

    return ModelRegistry(args.models_dir or default_models_dir())


def _models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    installed = registry.installed()
    offers = registry.offers()
    if args.json:
        print(json.dumps({
            "installed": [{"name": m.name, "path": str(m.path)} for m in installed],
            "offered": [asdict(o) for o in offers]}, indent=2))
        return 0
    names = {m.name for m in installed}
    for model in installed:
        print(f"installed  {model.name}  {model.path}")
    for offer in offers:
        if offer.name not in names:
            how = "download" if offer.needs_network else "build"
            mark = " (default)" if offer.default else ""
            print(f"available  {offer.name}{mark}  [{how} with `photosearch models build "
                  f"{offer.name}`]  {offer.description}")
    return 0


def _models_build(args: argparse.Namespace) -> int:
    registry = _registry(args)
    name = args.name or args.model or registry.default_model_name()
    if registry.path_of(name) and not args.force:
        print(f"{name} is already installed at {registry.path_of(name)}")
        return 0
    print(f"building {name}...", file=sys.stderr)
    started = time.perf_counter()
    report = lambda m: print(f"  {m}", file=sys.stderr)  # noqa: E731
    path = (registry.rebuild(name, progress=report, allow_network=True) if args.force
            else registry.ensure(name, progress=report, allow_network=True))
    print(f"built {name} in {time.perf_counter() - started:.0f}s: {path}")
    return 0


def _models_use(args: argparse.Namespace) -> int:
    with _open(args) as library:
        library.use_model(args.name)
        print(f"library now uses {args.name}; run `photosearch index` to encode photos with it")
    return 0


def _models_rerank(args: argparse.Namespace) -> int:
    from photosearch.rerank import save_setting

    with _open(args) as library:
        reranker = save_setting(library, args.name, args.depth)
        print(f"text searches re-rank their top {args.depth} with {reranker.name}"
              if reranker else "re-ranking off")
        if reranker and args.fill:
            from photosearch.rerank import library_photos

            count = reranker.fill(library_photos(library))
            print(f"{count} photos encoded for re-ranking (the rest were cached)")
    return 0


def _models_provider(args: argparse.Namespace) -> int:
    from photosearch.models.runtime import AUTO_PROVIDER, local_providers

    with _open(args) as library:
        if args.name:
            library.use_provider(args.name)
        print(f"execution provider: {library.provider}")
        print(f"available here: {', '.join([AUTO_PROVIDER, *local_providers()])}")
    return 0


# --- demo ----------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from photosearch.progress import ProgressBar

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
        print(f"indexed {folder}: {report.encoding.encoded} encoded now, "
              f"{report.encoding.failed} failed", file=sys.stderr)
        from photosearch.search import SearchQuery

        started = time.perf_counter()
        results = library.search(SearchQuery(text=query, k=args.k, folder=folder))
        print(f'best matches for "{query}":')
        _print_results(results, False, time.perf_counter() - started)
    return 0


def _sample_folder() -> Path:
    """Flickr8k photos beside the checkout when present, else the bundled samples."""
    root = Path(__file__).resolve().parent.parent
    shared = root.parent / "shared" / "data" / "flickr8k-1k" / "images"
    if shared.is_dir():
        return shared
    for candidate in (root / "resources" / "samples",
                      Path(sys.prefix) / "share" / "photosearch" / "samples"):
        if candidate.is_dir():
            return candidate
    raise PhotosearchError("no sample photos found; pass --photos FOLDER")


if __name__ == "__main__":
    sys.exit(main())
