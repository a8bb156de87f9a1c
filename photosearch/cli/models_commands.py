"""`photosearch models pull | remove | info | import | catalogue`: getting and managing bundles.

Kept out of cli.py (which only registers these parsers); like cli.py, this layer prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from photosearch.errors import ModelNotFound, PhotosearchError


def add_models_commands(model_commands, common: argparse.ArgumentParser) -> None:  # noqa: ANN001
    pull = model_commands.add_parser(
        "pull",
        parents=[common],
        help="download a model from the Hugging Face hub (catalogue name or ORG/REPO)",
        description="Downloads only the files the app needs, checks each against the hub's "
        "sha256, and installs the model in one step. Ctrl-C or a lost connection "
        "keeps what was downloaded: run the same command again to resume. "
        "HF_ENDPOINT picks a mirror, HF_HUB_OFFLINE=1 forbids downloads, "
        "HTTPS_PROXY is honoured.",
    )
    pull.add_argument(
        "name", help="a name from `photosearch models catalogue`, an Immich model name, or ORG/REPO"
    )
    pull.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    pull.add_argument("--force", action="store_true", help="download again even if installed")
    pull.set_defaults(handler=_pull)

    catalogue = model_commands.add_parser(
        "catalogue", parents=[common], help="models known by name (no network request)"
    )
    catalogue.add_argument("--json", action="store_true")
    catalogue.set_defaults(handler=_catalogue)

    info = model_commands.add_parser(
        "info",
        parents=[common],
        help="files, size, dims, tokenizer, input shapes, hashes and origin of an installed model",
    )
    info.add_argument("name")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_info)

    remove = model_commands.add_parser(
        "remove",
        parents=[common],
        help="delete an installed model (or a half-finished download); refuses the library's "
        "active model",
    )
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_remove)

    importing = model_commands.add_parser(
        "import",
        parents=[common],
        help="install a bundle directory, a .zip/.tar.* archive of one, or an OpenCLIP "
        "checkpoint (needs the convert extra)",
    )
    importing.add_argument("path", type=Path)
    importing.add_argument("--name", default=None, help="install under this name")
    importing.add_argument(
        "--arch", default=None, help="open_clip architecture of a checkpoint, e.g. ViT-B-32"
    )
    importing.add_argument(
        "--force", action="store_true", help="replace an installed model of the same name"
    )
    importing.set_defaults(handler=_import)


def _models_dir(args: argparse.Namespace) -> Path:
    from photosearch.paths import default_models_dir

    return args.models_dir or default_models_dir()


def _pull(args: argparse.Namespace) -> int:
    from photosearch.models.hub import PullError, plan_pull, pull
    from photosearch.models.providers import ModelRegistry

    models_dir = _models_dir(args)
    registry = ModelRegistry(models_dir)
    if any(offer.name == args.name for offer in registry.offers()):  # a plugin's model
        path = registry.ensure(
            args.name, allow_network=True, progress=lambda m: print(f"  {m}", file=sys.stderr)
        )
        print(f"{args.name} is installed at {path}")
        return 0
    plan = plan_pull(args.name, revision=args.revision)
    installed = registry.path_of(plan.name)
    if installed is not None and not args.force:
        print(f"{plan.name} is already installed at {installed} (--force downloads it again)")
        return 0
    print(
        f"{plan.name}: {len(plan.files)} files, {_size(plan.total_bytes)} from "
        f"{plan.repository} on {plan.endpoint} (commit {plan.revision[:10]})",
        file=sys.stderr,
    )
    from tqdm import tqdm

    with tqdm(
        total=plan.total_bytes,
        unit="B",
        unit_scale=True,
        desc=plan.name,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
    ) as bar:
        try:
            path = pull(
                plan,
                models_dir,
                progress=bar.update,
                replace=args.force,
                status=lambda m: bar.set_postfix_str(m[:40]),
            )
        except PullError:
            bar.leave = False
            raise
    print(
        f"installed {plan.name} at {path}; search with it: "
        f"`photosearch models use {plan.name}` then `photosearch index`"
    )
    return 0


def _catalogue(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from photosearch.models.catalogue import load_catalogue
    from photosearch.models.providers import ModelRegistry

    installed = {m.name for m in ModelRegistry(_models_dir(args)).installed()}
    entries = load_catalogue()
    if args.json:
        print(
            json.dumps([{**asdict(e), "installed": e.name in installed} for e in entries], indent=2)
        )
        return 0
    for entry in entries:
        quality = f"recall {entry.quality['value']}%" if entry.quality else "recall ?"
        mark = "installed" if entry.name in installed else "         "
        size = _size(entry.download_size_bytes) if entry.download_size_bytes else "size ?"
        print(
            f"{mark}  {entry.name:<52} {entry.embed_dim or '?':>5}d  "
            f"{','.join(entry.languages) or '?':<12} {size:>9}  {quality}"
        )
    print(
        "recall: Immich's English text-to-image figure on Crossmodal-3600 (see "
        "resources/models-catalogue.json for sources); sizes are shown by `models pull`",
        file=sys.stderr,
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from photosearch.models.installing import describe_bundle

    path = _installed_path(args, args.name)
    info = describe_bundle(path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  {info['path']}")
    print(
        f"  embedding {info['embed_dim']} dims, image {info['image_size']} px, "
        f"text {info['context_length']} tokens, pad token {info['pad_token']!r}"
    )
    tokenizer = info["tokenizer"]
    print(f"  tokenizer {tokenizer.get('type')} ({tokenizer.get('vocab_size')} entries)")
    for tower, spec in info["towers"].items():
        inputs = ", ".join(f"{i['name']} {i['type']} {i['shape']}" for i in spec["inputs"])
        outputs = ", ".join(f"{o['name']} {o['type']} {o['shape']}" for o in spec["outputs"])
        print(f"  {tower}: {inputs} -> {outputs}")
    source = info["source"] or {}
    print("  from " + (", ".join(f"{k} {v}" for k, v in sorted(source.items())) or "unknown"))
    print(f"  {len(info['files'])} files, {_size(info['size'])}:")
    for rel, entry in info["files"].items():
        print(f"    {rel:<40} {_size(entry['size']):>9}  {entry['sha256'] or '(no hash recorded)'}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from photosearch.models.hub import PullError, discard_staged

    models_dir = _models_dir(args)
    try:
        path = _installed_path(args, args.name)
    except ModelNotFound:
        try:
            if discard_staged(models_dir, args.name):
                print(f"removed the unfinished download of {args.name}")
                return 0
        except PullError:
            pass
        raise
    from photosearch.models.installing import safe_dir_name

    for role, (name, library) in _library_models(args).items():
        if name == args.name or safe_dir_name(name) == path.name:
            raise PhotosearchError(
                f"{args.name} is the {role} of library {library}; switch it first with "
                "`photosearch models use OTHER`"
            )
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if not args.yes:
        if not sys.stdin.isatty():
            raise PhotosearchError(f"removing {path} needs confirmation: pass --yes")
        answer = input(f"delete model {args.name} ({_size(size)}) at {path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    shutil.rmtree(path)
    print(
        f"removed {args.name} ({_size(size)} freed); vectors made with it stay in libraries "
        "until re-indexed with another model"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from photosearch.models.importing import import_model

    path = import_model(
        args.path,
        _models_dir(args),
        name=args.name,
        arch=args.arch,
        replace=args.force,
        progress=lambda m: print(f"  {m}", file=sys.stderr),
    )
    print(
        f"installed {path.name} at {path}; search with it: "
        f"`photosearch models use {path.name}` then `photosearch index`"
    )
    return 0


def _installed_path(args: argparse.Namespace, name: str) -> Path:
    """The bundle directory of ``name``; also finds a bundle too broken to be listed."""
    from photosearch.models.installing import safe_dir_name
    from photosearch.models.providers import ModelRegistry

    models_dir = _models_dir(args)
    path = ModelRegistry(models_dir).path_of(name)
    plain = safe_dir_name(name) == name and not name.startswith(".")  # never ../ or .staging
    if path is None and plain and (models_dir / name / "config.json").is_file():
        path = models_dir / name
    if path is None:
        raise ModelNotFound(
            f"no installed model {name!r} in {models_dir} (`photosearch models list` shows them)"
        )
    return path


def _library_models(args: argparse.Namespace) -> dict[str, tuple[str, Path]]:
    """{"model"|"switch target": (model name, library dir)} of the library given or the
    default one, if it exists: the bundles that library still needs."""
    from photosearch.catalog import Catalog
    from photosearch.library.active_model import ACTIVE_MODEL_KEY, TARGET_MODEL_KEY
    from photosearch.models.providers import ModelRegistry
    from photosearch.paths import CATALOG_FILE, default_library_dir

    directory = (args.library or default_library_dir()).expanduser()
    if not (directory / CATALOG_FILE).is_file():
        return {}
    catalog = Catalog(directory / CATALOG_FILE)
    try:
        saved = catalog.get_meta(ACTIVE_MODEL_KEY)
        target = catalog.get_meta(TARGET_MODEL_KEY)
    finally:
        catalog.close()
    if not saved:
        try:
            saved = ModelRegistry(_models_dir(args)).default_model_name()
        except ModelNotFound:
            saved = None
    found = {"model": saved, "switch target": target}
    return {role: (name, directory) for role, name in found.items() if name}


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
