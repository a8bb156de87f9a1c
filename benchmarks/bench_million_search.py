"""A user's `photosearch search` at 1M photos, end to end (issue 18 item 2: < 1.5 s when
nothing runs, < 0.5 s when the app or `watch` serves the library), beside the same run's
baselines: the bare imports every in-process search pays, and the same searches at 1k photos.

Libraries are built through the app's own code: the catalog's schema by ``Catalog``, its rows
(folder, photos with a random perceptual hash each, model, one 17-byte slot reference per
vector) with SQL as
bench_scale.py does, the vectors written to the model's slot file by ``VectorSlots.append``
(real Flickr vectors reused with noise, rounded by ``as_stored`` as the encoder's are), the
change log pruned as a save prunes it, and the graph, float16 matrix and commit point written
by ``VectorStore.save`` at the catalog's position (so an open is in step, as after any save),
and the photo-hash file written as `index` leaves it (``duplicates.save_hash_file``).
The graph is built with a low ef_construction (default 16) to stay within minutes on 2 cores:
its quality changes nothing measured here (the one-shot search never reads it). The photo
files do not exist: never run `photosearch watch` on these libraries (its reconcile would
remove every photo); the served search is answered by a process this script starts the way
the app does (``Library`` open, ``cli.main.serve_searches``).

Measured, each search in a fresh process running the real CLI (`python -m photosearch search
TEXT -k 20`), page cache and bytecode cache warm after a first unmeasured run:

- baseline: `python -c "import numpy, onnxruntime, sqlalchemy"`;
- in-process (PHOTOSEARCH_NO_SERVICE=1), at 1k and 1M, with a breakdown of one run of the
  same CLI under cProfile (imports, text session, store open, scan, catalog work, printing);
- served: the same CLI while a process serves the library.

    nice -n 10 .venv/bin/python benchmarks/bench_million_search.py \\
        --library /tmp/oneshot18b/lib1m --small-library /tmp/oneshot18b/lib1k [--code /tmp/base]

Side by side with a baseline tree (`git archive main | tar -x -C /tmp/base`), runs of the two
interleaved, each on its own copy of the libraries (each code upgrades the schema it knows:
`cp -al` the vectors directory, copy the catalog; a prepare step leaves each library as that
code's `index` would):

    nice -n 10 .venv/bin/python benchmarks/bench_million_search.py \\
        --library /tmp/x/lib1m-new --small-library /tmp/x/lib1k-new --base-code /tmp/base \\
        --base-library /tmp/x/lib1m-base --base-small-library /tmp/x/lib1k-base --runs 9

Figures on 2026-11-29 (2 cores shared with other sessions, load average 3-4; main = 64752fc,
runs of the two trees interleaved, 4 each; 1M built in 15 min, 3.3 GB; its hashes were
added by an UPDATE of the same kind before this script wrote them itself):
`import numpy, onnxruntime, sqlalchemy` alone 0.44-0.52 s; at 1M, nothing running, main
3.36-3.82 s -> 2.11-2.34 s, of which folding copies ~0.9 s (it reads every photo's stored hash:
SQLite's scan of the photos table, O(library)); with --all-copies 1.82-2.00 s -> 1.28-1.40 s
(the graph no longer checked; the scan, verified as it goes, ~0.2-0.3 s); at 1k 0.99-1.22 s
both. Served at 1M (p50 of 3): 0.47-0.54 s -> 0.19-0.39 s; at 1k 0.10-0.19 s.

With the photo-hash file (schema v7; base = main 75558b7, same machine, 2 cores shared with
three other sessions; min / p50 / max of 9 interleaved runs, bytecode cached): at load average
2.9-3.8, 1M nothing running 2.29 / 2.51 / 3.94 s -> 1.28 / 1.42 / 2.16 s, the same as
--all-copies (1.35 / 1.55 / 2.26 s -> 1.39 / 1.63 / 2.14 s): folding copies 1.19 s -> 0.13 s
under cProfile (the file read and checked in ~0.04 s, 54 MB at 1M); served at 1M p50 0.23 ->
0.12 s; at 1k no change (0.92-0.93 s min). An earlier run at load 2.7-3.4 (5 runs, both
trees compiling their modules from source each time): 2.07 / 2.15 / 2.30 s -> 1.30 / 1.36 /
1.40 s; at load 3.5-5.1 (bytecode cached) 2.11 / 3.15 / 4.65 s -> 1.10 / 1.71 / 2.72 s.
What is left at 1M is the floor of any in-process search here: imports ~0.5 s (SQLAlchemy
~0.25 s), the text session ~0.1-0.15 s, the matrix scan with its XXH3 check ~0.2-0.3 s.
Writing the file at 1M: 1.3-1.7 s (the catalog read it replaces).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_scale import base_vectors, library_vectors

HERE = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache/photosearch-bench"
MODEL = "conse-lite0-minilm"
QUERY = "two dogs playing in the snow"
ROWS_PER_STEP = 50_000


def build(library: Path, photos: int, noise: float, ef_construction: int) -> None:
    import hnswlib

    from photosearch.catalog import Catalog, vector_changes
    from photosearch.files.perceptual_hash import STORED_DIGITS
    from photosearch.library import saved_vectors
    from photosearch.library.facade import default_models_dir
    from photosearch.models.bundle import bundle_identity
    from photosearch.paths import CATALOG_FILE, VECTORS_DIR
    from photosearch.search.duplicates import save_hash_file
    from photosearch.vectors.store import HNSW_M, VectorStore
    from photosearch.vectors.vector_slots import as_stored

    started = time.perf_counter()
    vectors = as_stored(library_vectors(base_vectors(None, CACHE), photos, noise))
    dim = vectors.shape[1]
    identity = bundle_identity(default_models_dir() / MODEL)
    library.mkdir(parents=True)
    Catalog(library / CATALOG_FILE).close()
    slots = saved_vectors.slots_for(library / VECTORS_DIR, identity, dim)
    rng = np.random.default_rng(5)
    with sqlite3.connect(library / CATALOG_FILE) as connection:
        connection.execute(
            "INSERT INTO folders (id, path, added_at, online) VALUES "
            "(1, '/nonexistent/photos', '2026-01-01', 1)"
        )
        connection.execute(
            "INSERT INTO models (id, identity, name, embed_dim, created_at) "
            "VALUES (1, ?, ?, ?, '2026-01-01')",
            (identity, MODEL, dim),
        )
        connection.execute("INSERT INTO meta VALUES ('active_model', ?)", (MODEL,))
        for start in range(0, photos, ROWS_PER_STEP):
            ids = range(start + 1, min(photos, start + ROWS_PER_STEP) + 1)
            references = slots.append(vectors[start : start + len(ids)])
            # every photo has a perceptual hash, as indexed ones do (random: few copies), so
            # a search folds copies against the whole library as it would in a real one
            hashes = rng.integers(0, 256, (len(ids), STORED_DIGITS // 2), dtype=np.uint8)
            connection.executemany(
                "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, "
                "file_time, status, added_at, phash) VALUES (?, 1, ?, 1000, 0, ?, "
                "'2026-01-01', 'ok', '2026-01-01', ?)",
                [
                    (i, f"/nonexistent/photos/{i // 1000}/{i}.jpg", f"{i:032x}", value.hex())
                    for i, value in zip(ids, map(bytes, hashes), strict=True)
                ],
            )
            connection.executemany(
                "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, 1, ?)",
                zip(ids, references, strict=True),
            )
            connection.commit()
        # the rows the triggers logged are what a save prunes: prune them as a save would
        connection.execute("DELETE FROM vector_log WHERE seq < (SELECT max(seq) FROM vector_log)")
    catalog_s = time.perf_counter() - started
    graph = hnswlib.Index(space="ip", dim=dim)
    graph.init_index(max_elements=photos, ef_construction=ef_construction, M=HNSW_M)
    graph.add_items(vectors, np.arange(1, photos + 1), num_threads=os.cpu_count() or 1)
    catalog = Catalog(library / CATALOG_FILE)
    try:
        store = VectorStore(library / VECTORS_DIR, identity, dim)
        store._index = graph  # the graph built above; everything written by the store's save
        store.catalog_position = tuple(vector_changes.current_position(catalog))
        store.save()
        vector_changes.prune(catalog, 1, vector_changes.Position(*store.catalog_position))
        save_hash_file(catalog, library / VECTORS_DIR)  # as `index` leaves it
    finally:
        catalog.close()
    print(
        f"built {library}: {photos:,} photos, catalog + slots {catalog_s:.0f} s, "
        f"all {time.perf_counter() - started:.0f} s",
        flush=True,
    )


# --- children ----------------------------------------------------------------------------


def child_breakdown(library: Path) -> dict:
    """One CLI search in this process under cProfile: cumulative seconds of its parts."""
    os.environ["PHOTOSEARCH_NO_SERVICE"] = "1"
    started = time.perf_counter()
    profile = cProfile.Profile()
    arguments = ["--library", str(library), "search", QUERY, "-k", "20"]
    with contextlib.redirect_stdout(io.StringIO()):
        profile.enable()
        from photosearch.cli.main import main as cli_main

        code = cli_main(arguments)
        profile.disable()
    total = time.perf_counter() - started
    assert code == 0
    stats = pstats.Stats(profile)
    parts = {
        "Library() (catalog open)": ("facade.py", "__init__"),
        "text session + encoding": ("runtime.py", "encode_texts"),
        "store open (VectorStore + catch-up)": ("model_sets.py", "_open_store"),
        "store.search (scan + re-score)": ("store.py", "search"),
        "fold copies": ("duplicates.py", "fold_similar"),
        "of which the hash table": ("duplicates.py", "_hash_table"),
        "library.search (all of the above but imports)": ("facade.py", "search"),
        "printing": ("main.py", "_print_results"),
    }
    found = {name: 0.0 for name in parts}
    imports = 0.0
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        cumulative = row[3]
        for name, (file_end, function_name) in parts.items():
            if filename.endswith(file_end) and function == function_name:
                found[name] = max(found[name], cumulative)
        if function == "<module>" and filename.endswith("__init__.py") is False:
            pass
        if function == "_find_and_load":
            imports = max(imports, cumulative)
    found["imports (outermost _find_and_load)"] = imports
    found["total under cProfile"] = total
    hot = io.StringIO()
    pstats.Stats(profile, stream=hot).sort_stats("tottime").print_stats(12)
    found["hot"] = hot.getvalue()
    return found


def child_prepare(library: Path) -> str:
    """Leave ``library`` as that code's `index` would (schema upgraded, hash file written
    where the code keeps one), without scanning: the bench's photo files do not exist."""
    from photosearch.catalog import Catalog
    from photosearch.paths import CATALOG_FILE, VECTORS_DIR
    from photosearch.search import duplicates

    catalog = Catalog(library / CATALOG_FILE)
    try:
        version = catalog.schema_version()
        saver = getattr(duplicates, "save_hash_file", None)
        if saver is None:
            return f"schema v{version}, no hash file in this code"
        started = time.perf_counter()
        wrote = saver(catalog, library / VECTORS_DIR)
        took = time.perf_counter() - started
        return f"schema v{version}, hash file {'written' if wrote else 'current'} ({took:.2f} s)"
    finally:
        catalog.close()


def child_serve(library: Path) -> None:
    """Serve ``library``'s searches as the app does, until stdin closes."""
    from photosearch.cli.main import serve_searches
    from photosearch.library.facade import Library

    with Library(library) as opened:
        server = serve_searches(opened)
        if server is None:
            raise SystemExit("could not serve searches")
        time.sleep(1.0)  # the warm-up search (serve_searches starts it) runs meanwhile
        print("serving", flush=True)
        sys.stdin.read()
        server.close()


# --- the parent --------------------------------------------------------------------------


def timed_runs(
    command: list[str], runs: int, env: dict | None = None, cwd: Path | None = None
) -> list[float]:
    """Wall seconds of ``runs`` fresh processes, after one unmeasured (page cache warm).
    ``cwd``: the tree under test (`python -m` puts the working directory first on the path).
    """
    return interleaved_runs([(command, env, cwd)], runs)[0]


def interleaved_runs(
    setups: list[tuple[list[str], dict | None, Path | None]], runs: int
) -> list[list[float]]:
    """``timed_runs`` of several (command, env, cwd), one run of each in turn: a change in
    the machine's load reaches them all alike."""
    for command, env, cwd in setups:
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    times: list[list[float]] = [[] for _ in setups]
    for _ in range(runs):
        for found, (command, env, cwd) in zip(times, setups, strict=True):
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
            found.append(time.perf_counter() - started)
    return times


def cli(library: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "photosearch",
        "--library",
        str(library),
        "search",
        QUERY,
        "-k",
        "20",
        *extra,
    ]


def row(label: str, times: list[float]) -> str:
    return (
        f"{label:<52} p50 {statistics.median(times):6.2f} s  min {min(times):6.2f} s  "
        f"max {max(times):6.2f} s"
    )


def code_env(code: Path, **extra: str) -> dict:
    """The environment that runs ``code``'s photosearch, its modules' bytecode cached (under
    the bench's cache, not in the tree) as an installed package's is: with
    PYTHONDONTWRITEBYTECODE set, every run would compile ~70 modules from source (0.15 s)."""
    env = dict(
        os.environ,
        PYTHONPATH=f"{code}{os.pathsep}{code / 'plugins'}",
        PYTHONPYCACHEPREFIX=str(CACHE / "pycache"),
        **extra,
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def child(mode: str, library: Path, code: Path) -> Any:  # what the child printed, as JSON
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--library", str(library)],
        capture_output=True,
        text=True,
        check=True,
        env=code_env(code),
    ).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True, help="built here if absent")
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--label", default="1M", help="what the rows call --library")
    parser.add_argument("--small-library", type=Path, help="a 1k library (built if absent)")
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--ef-construction", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--no-served", action="store_true")
    parser.add_argument("--child", default=None)
    parser.add_argument(
        "--code", type=Path, default=HERE, help="the tree whose photosearch runs (default: this)"
    )
    parser.add_argument(
        "--base-code", type=Path, help="a baseline tree, run interleaved with --code"
    )
    parser.add_argument(
        "--base-library",
        type=Path,
        help="the baseline's copy of --library (each code upgrades the schema it knows)",
    )
    parser.add_argument("--base-small-library", type=Path, help="its copy of --small-library")
    args = parser.parse_args()
    if args.child == "breakdown":
        print(json.dumps(child_breakdown(args.library)))
        return
    if args.child == "serve":
        child_serve(args.library)
        return
    if args.child == "prepare":
        print(json.dumps(child_prepare(args.library)))
        return
    if not args.library.exists():
        build(args.library, args.photos, args.noise, args.ef_construction)
    if args.small_library is not None and not args.small_library.exists():
        build(args.small_library, 1000, args.noise, 200)
    if args.build_only:
        return
    trees = [("new", args.code, {"1k": args.small_library, args.label: args.library})]
    if args.base_code is not None:
        base = {"1k": args.base_small_library, args.label: args.base_library}
        trees.insert(0, ("base", args.base_code, base))
    for label, code, libraries in trees:
        for name, library in libraries.items():
            if library is not None:
                print(f"{label} {name}: {child('prepare', library, code)}", flush=True)
    load = os.getloadavg()[0]
    imports = timed_runs([sys.executable, "-c", "import numpy, onnxruntime, sqlalchemy"], args.runs)
    print(
        f"{', '.join(f'{label} = {code}' for label, code, _ in trees)}; {args.runs} fresh "
        f"processes each, interleaved, query {QUERY!r}, -k 20; load average {load:.1f}"
    )
    print(row("baseline: python -c 'import numpy, onnxruntime, sqlalchemy'", imports))
    for name in ("1k", args.label):
        present = [(label, code, libs[name]) for label, code, libs in trees if libs[name]]
        for extra, what in (((), "nothing running"), (("--all-copies",), "--all-copies")):
            setups = [
                (cli(library, *extra), code_env(code, PHOTOSEARCH_NO_SERVICE="1"), code)
                for _, code, library in present
            ]
            for (label, _, _), times in zip(
                present, interleaved_runs(setups, args.runs), strict=True
            ):
                print(row(f"{name} {label}: `photosearch search`, {what}", times), flush=True)
        for label, code, library in present:
            parts = child("breakdown", library, code)
            hot = parts.pop("hot")
            print(
                f"    {label}, one run under cProfile: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
            )
            if os.environ.get("BENCH_HOT"):
                print(hot)
    if not args.no_served:
        for label, code, libraries in trees:
            for name, library in libraries.items():
                if library is not None:
                    served(f"{name} {label}", library, code, args.runs)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def served(label: str, library: Path, code: Path, runs: int) -> None:
    """The CLI's search while a process serves ``library`` as the app does."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--child", "serve", "--library", str(library)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=code_env(code),
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "serving"
        times = timed_runs(cli(library), runs, code_env(code), code)
        print(row(f"{label}: `photosearch search`, served", times), flush=True)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=120)


if __name__ == "__main__":
    main()
