"""Near-duplicate grouping measured on constructed copies of Flickr8k-1k train/val photos.

Builds the set (benchmarks/duplicate_set.py: mirrored, resized, recompressed and cropped copies
of a third of the photos, the rest as similar-looking distractors), indexes it with the default
model through a real Library (the perceptual hashes are computed by the indexer), then:

1. checks photosearch.files.perceptual_hash against imagehash.phash when imagehash is importable;
2. per copy kind, how far copies are from their original in hash bits and cosine;
3. sweeps the grouping rules on ``train`` (pairwise precision/recall of the groups union-find
   makes from all pairs) and prints where DuplicateRules' defaults sit;
4. runs the real ``find_groups`` (hash pairs, vectors of the middling ones) with the defaults
   on ``train`` and ``val`` and prints pairwise precision/recall, exact groups and timings;
5. costs: the hash beside a photo's decode, folding in a search, all-pairs comparison at
   10k/50k photos (synthetic hashes).

    .venv/bin/python benchmarks/bench_duplicates.py [--workdir DIR]

(Set PHOTOSEARCH_SHARED_DATA when ../shared/data is not beside the checkout.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from duplicate_set import COPIES, build

from photosearch.catalog import Photo, Vector
from photosearch.files.imaging import load_image, to_model_input
from photosearch.files.perceptual_hash import (
    perceptual_hash,
    split_stored,
    stored_hash,
)
from photosearch.library import saved_vectors
from photosearch.library.facade import Library
from photosearch.search.duplicates import (
    DEFAULT_RULES,
    DuplicateRules,
    _hash_pairs,
    _hash_table,
    _HashTable,
    find_groups,
)
from photosearch.search.query import SearchQuery
from photosearch.vectors import vector_slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the set and library here (reused when present)",
    )
    args = parser.parse_args()
    if args.workdir:
        run(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-dups-") as tmp:
            run(Path(tmp))


def run(work: Path) -> None:
    photos, library_dir = work / "set", work / "library"
    if not (photos / "groups.json").exists():
        build(photos)
    truth = json.loads((photos / "groups.json").read_text())
    check_against_imagehash(photos / "train")
    with Library(library_dir) as library:
        known = {f.path for f in library.folders()}
        for split in truth:
            if str((photos / split).resolve()) not in known:
                library.add_folder(photos / split)
        started = time.perf_counter()
        report = library.index()
        print(
            f"indexed {report.encoding.encoded} photos in {time.perf_counter() - started:.1f} s "
            "(default model; machine shared with other jobs)"
        )
        facts = read_facts(library)
        for split, groups in truth.items():
            names = [str((photos / split / n).resolve()) for g in groups for n in g]
            group_of = np.array([i for i, g in enumerate(groups) for _ in g])
            cosine, bits, colour = pair_matrices(facts, names)
            print(f"\n== {split}: {len(names)} photos, {sum(len(g) > 1 for g in groups)} groups")
            copy_distances(names, group_of, cosine, bits, colour)
            if split == "train":
                sweep(group_of, cosine, bits, colour)
            started = time.perf_counter()
            found = find_groups(library.catalog, library.store)
            seconds = time.perf_counter() - started
            index = {name: i for i, name in enumerate(names)}
            predicted = np.full(len(names), -1)
            for number, group in enumerate(found):
                for photo in group.photos:
                    if photo.path in index:
                        predicted[index[photo.path]] = number
            singles = predicted < 0
            predicted[singles] = np.arange(singles.sum()) + len(found)
            precision, recall = pairwise(group_of, predicted)
            exact = exact_groups(group_of, predicted)
            per_kind = []
            for kind in COPIES:
                joined = [
                    predicted[index[n]] == predicted[index[n.replace(f"__{kind}", "")]]
                    for n in names
                    if n.endswith(f"__{kind}.jpg")
                ]
                per_kind.append(f"{kind} {np.mean(joined):.3f}")
            print("copies in their original's group: " + ", ".join(per_kind))
            print(
                f"find_groups with the defaults {DEFAULT_RULES}: pairwise precision "
                f"{precision:.3f}, recall {recall:.3f}; true groups found exactly {exact}; "
                f"{seconds:.2f} s for the whole library ({len(facts)} photos)"
            )
        costs(library, photos / "val")


def costs(library: Library, folder: Path) -> None:
    """What the hash adds to a photo's decode, what folding adds to a search, and how the
    all-pairs hash comparison grows with the library (synthetic hashes)."""
    preprocessing = library.encoder.config.preprocessing
    decode_s = hash_s = 0.0
    paths = sorted(folder.iterdir())[:150]
    for path in paths:
        started = time.perf_counter()
        image, _ = load_image(path, min_size=preprocessing.size)
        to_model_input(image, preprocessing)
        decode_s += time.perf_counter() - started
        started = time.perf_counter()
        stored_hash(image)
        hash_s += time.perf_counter() - started
    print(
        f"\nper photo (decode as the indexer does, {len(paths)} photos): decode+preprocess "
        f"{decode_s / len(paths) * 1000:.1f} ms, hash {hash_s / len(paths) * 1000:.2f} ms "
        f"(+{hash_s / decode_s * 100:.0f}%)"
    )
    for query in (
        SearchQuery(text="a dog running on the beach", k=20, all_copies=True),
        SearchQuery(text="a dog running on the beach", k=20),
    ):
        library.search(query)
        started = time.perf_counter()
        for _ in range(20):
            library.search(query)
        print(
            f"search k=20 {'every copy' if query.all_copies else 'folded   '}: "
            f"{(time.perf_counter() - started) / 20 * 1000:.1f} ms"
        )
    rng = np.random.default_rng(0)
    real = _hash_table(library.catalog)
    for count in (10_000, 100_000):  # random hashes, colours drawn from the real photos'
        fake = _HashTable(
            np.arange(count, dtype=np.int64),
            rng.integers(0, 2**63, count).astype(np.uint64),
            rng.integers(0, 2**63, count).astype(np.uint64),
            real.colour[rng.integers(0, len(real), count)],
        )
        started = time.perf_counter()
        _hash_pairs(fake, np.arange(count), DEFAULT_RULES)
        every = time.perf_counter() - started
        started = time.perf_counter()
        _hash_pairs(fake, np.arange(40), DEFAULT_RULES)
        print(
            f"hash comparison, {count:,} photos: all pairs {every:.1f} s; 40 results "
            f"against all (a search) {(time.perf_counter() - started) * 1000:.0f} ms"
        )


def check_against_imagehash(folder: Path) -> None:
    try:
        import imagehash
        from PIL import Image
    except ImportError:
        print("imagehash not importable: bit-equality check skipped")
        return
    paths = sorted(folder.iterdir())[:200]
    same = 0
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            same += perceptual_hash(rgb) == str(imagehash.phash(rgb))
    print(f"perceptual_hash == imagehash.phash on {same}/{len(paths)} photos")


def read_facts(library: Library) -> dict[str, tuple[tuple[int, int], np.ndarray]]:
    with library.catalog.session() as session:
        rows = session.execute(
            select(Photo.path, Photo.phash, Vector.vector)
            .join(Vector, Vector.photo_id == Photo.id)
            .where(Vector.model_id == library.model_id)
        ).all()
    store = library.store  # a vector is inline or a reference into the slot file (schema v6)
    slots = saved_vectors.slots_for(store.directory, store.identity, store.dim)
    _, vectors = vector_slots.decode([vector for _, _, vector in rows], store.dim, slots)
    return {
        path: (split_stored(value), vector)
        for (path, value, _), vector in zip(rows, vectors, strict=True)
    }


def pair_matrices(facts: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine, hash bits apart (own or mirror) and mean-colour distance of every pair."""
    vectors = np.stack([facts[n][1] for n in names])
    own = np.array([facts[n][0].own for n in names], dtype=np.uint64)
    mirror = np.array([facts[n][0].mirror for n in names], dtype=np.uint64)
    bits = np.minimum(
        np.bitwise_count(own[:, None] ^ own[None, :]),
        np.bitwise_count(own[:, None] ^ mirror[None, :]),
    )
    bits = np.minimum(bits, bits.T)  # each against the other's mirror, both ways
    colours = np.array([facts[n][0].colour for n in names], dtype=np.int32)
    colour = np.abs(colours[:, None, :] - colours[None, :, :]).max(axis=2)
    return vectors @ vectors.T, bits.astype(np.int32), colour


def copy_distances(names: list[str], group_of: np.ndarray, cosine, bits, colour) -> None:
    first = {}
    for i, g in enumerate(group_of):
        first.setdefault(g, i)
    print(
        f"{'copy':<14}{'bits p50':>9}{'p95':>5}{'max':>5}{'cos p5':>8}{'min':>7}"
        f"{'colour p95':>11}{'max':>5}"
    )
    for kind in COPIES:
        rows = [
            (first[g], i)
            for i, (n, g) in enumerate(zip(names, group_of, strict=True))
            if n.endswith(f"__{kind}.jpg")
        ]
        b = np.array([bits[a, c] for a, c in rows])
        c = np.array([cosine[a, c] for a, c in rows])
        apart = np.array([colour[a, c] for a, c in rows])
        print(
            f"{kind:<14}{np.median(b):>9.0f}{np.percentile(b, 95):>5.0f}{b.max():>5}"
            f"{np.percentile(c, 5):>8.3f}{c.min():>7.3f}{np.percentile(apart, 95):>11.0f}"
            f"{apart.max():>5}"
        )
    upper = np.triu_indices(len(names), 1)
    distinct = group_of[upper[0]] != group_of[upper[1]]
    print(
        f"distinct photos: closest hash {bits[upper][distinct].min()} bits, highest cosine "
        f"{cosine[upper][distinct].max():.3f}"
    )


def groups_from_pairs(n: int, pairs: np.ndarray) -> np.ndarray:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(int(a))] = find(int(b))
    return np.array([find(i) for i in range(n)])


def pairwise(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    upper = np.triu_indices(len(truth), 1)
    same_true = truth[upper[0]] == truth[upper[1]]
    same_predicted = predicted[upper[0]] == predicted[upper[1]]
    hits = (same_true & same_predicted).sum()
    return hits / max(1, same_predicted.sum()), hits / max(1, same_true.sum())


def exact_groups(truth: np.ndarray, predicted: np.ndarray) -> str:
    right = total = 0
    for g in np.unique(truth):
        members = truth == g
        if members.sum() < 2:
            continue
        total += 1
        label = predicted[members][0]
        right += bool(
            (predicted[members] == label).all() and (predicted == label).sum() == members.sum()
        )
    return f"{right}/{total}"


def sweep(group_of: np.ndarray, cosine: np.ndarray, bits: np.ndarray, colour: np.ndarray) -> None:
    print(
        "rules on train (all pairs, union-find): hash alone <= A bits, or cosine >= C and "
        "hash <= B bits; and mean colours <= L apart"
    )
    upper = np.triu_indices(len(group_of), 1)
    c, b, apart = cosine[upper], bits[upper], colour[upper]
    chosen: tuple[float, float, DuplicateRules] | None = None
    for levels, alone, (band_cos, band_bits) in itertools.product(
        (16, 24, 255),
        (8, 10, 12, 14),
        ((None, None), (0.97, 16), (0.95, 16), (0.93, 16), (0.9, 16), (0.93, 20), (0.9, 14)),
    ):
        rules = DuplicateRules(
            hash_bits=alone,
            vector_with_hash=band_cos or 2.0,
            hash_bits_with_vector=band_bits or 0,
            colour_levels=levels,
        )
        keep = (
            (b <= rules.hash_bits)
            | ((c >= rules.vector_with_hash) & (b <= rules.hash_bits_with_vector))
        ) & (apart <= levels)
        pairs = np.stack([upper[0][keep], upper[1][keep]], axis=1)
        predicted = groups_from_pairs(len(group_of), pairs)
        precision, recall = pairwise(group_of, predicted)
        mark = "  <- default" if rules == DEFAULT_RULES else ""
        if precision >= 0.995 and (chosen is None or recall > chosen[0]):
            chosen = (recall, precision, rules)
        print(
            f"  L={levels:>3} A={alone:>2} C={band_cos or '-':>4} B={band_bits or '-':>2}: "
            f"precision {precision:.3f} recall {recall:.3f} "
            f"exact {exact_groups(group_of, predicted)}{mark}"
        )
    print(f"highest recall with precision >= 0.995 (first met): {chosen}")


if __name__ == "__main__":
    main()
