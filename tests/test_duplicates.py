"""Near-duplicates end to end: perceptual hashes written by the indexer, groups, the
`duplicates` command, and search folding copies into one result with "+N similar"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from sqlalchemy import select, update

from photosearch.catalog import Photo
from photosearch.cli.main import main
from photosearch.files.perceptual_hash import (
    NO_HASH,
    hamming,
    hashes_with_mirror,
    perceptual_hash,
    split_stored,
    stored_hash,
)
from photosearch.indexing import hash_fill
from photosearch.indexing.hash_fill import photos_without_hash
from photosearch.search.duplicates import find_groups
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.support.tiny_bundle import build_tiny_bundle


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like image with structure at several scales, different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8))


def make_copies(folder: Path, seed: int) -> list[Path]:
    """An original (JPEG q95) and its mirrored, half-size and q30 copies."""
    folder.mkdir(parents=True, exist_ok=True)
    original = scene(seed)
    paths = [
        folder / f"scene{seed}.jpg",
        folder / f"scene{seed}_mirrored.jpg",
        folder / f"scene{seed}_small.jpg",
        folder / f"scene{seed}_q30.jpg",
    ]
    original.save(paths[0], quality=95)
    ImageOps.mirror(original).save(paths[1], quality=95)
    original.resize((160, 120), Image.Resampling.LANCZOS).save(paths[2], quality=90)
    original.save(paths[3], quality=30)
    return paths


@pytest.fixture
def copies_dir(tmp_path: Path) -> tuple[Path, list[list[Path]], list[Path]]:
    """Two groups of four copies, three distinct photos and one flat one."""
    folder = tmp_path / "photos"
    groups = [make_copies(folder / "trip", 1), make_copies(folder / "party", 2)]
    singles = []
    for seed in (3, 4, 5):
        path = folder / "other" / f"single{seed}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        scene(seed).save(path)
        singles.append(path)
    singles.append(make_photo(folder / "other" / "flat.jpg", "red"))
    return folder, groups, singles


def test_hash_matches_known_properties():
    image = scene(7)
    own, mirror = hashes_with_mirror(image)
    assert own == perceptual_hash(image) and len(own) == 16
    assert hamming(int(mirror, 16), int(perceptual_hash(ImageOps.mirror(image)), 16)) <= 2
    assert hamming(int(own, 16), int(perceptual_hash(scene(8)), 16)) > 16
    stored = stored_hash(image)
    assert stored.startswith(own + mirror) and len(stored) == 38
    mean = np.asarray(image, np.float64).reshape(-1, 3).mean(axis=0)
    assert np.abs(np.array(split_stored(stored).colour) - mean).max() <= 1
    assert split_stored(stored)[:2] == (int(own, 16), int(mirror, 16))
    assert stored_hash(Image.new("RGB", (50, 40), (5, 5, 5))) == NO_HASH
    assert split_stored(NO_HASH) is None and split_stored("xyz") is None
    assert split_stored("g" * 38) is None


def _stored_hashes(library) -> dict[str, str | None]:
    with library.catalog.session() as session:
        return {path: value for path, value in session.execute(select(Photo.path, Photo.phash))}


def test_index_stores_hashes_and_groups_copies(library, copies_dir):
    folder, groups, singles = copies_dir
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    library.add_folder(folder)
    library.index()
    hashes = _stored_hashes(library)
    assert hashes[str(singles[-1])] == NO_HASH  # flat: hashed, never grouped
    assert all(len(v) == 38 for p, v in hashes.items() if p != str(singles[-1]))

    found = find_groups(library.catalog, library.store)
    assert sorted(sorted(p.path for p in g.photos) for g in found) == sorted(
        sorted(str(p) for p in group) for group in groups
    )
    for group in found:
        assert group.best.path.endswith(("scene1.jpg", "scene2.jpg"))  # most pixels, largest
        assert group.extra_bytes == group.total_bytes - group.best.size_bytes
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_missing_hashes_are_filled_on_the_next_index(library, copies_dir, monkeypatch):
    folder, groups, _ = copies_dir
    library.add_folder(folder)
    library.index()
    written = _stored_hashes(library)
    with library.catalog.session() as session:  # as an older version left the catalog
        session.execute(update(Photo).values(phash=None))
    assert len(photos_without_hash(library.catalog, library.model_id)) == len(written)
    assert find_groups(library.catalog, library.store) == []

    monkeypatch.setattr(hash_fill, "BATCH", 4)
    library.index(should_stop=lambda: True)  # stops after the first batch: that one is kept
    assert len(photos_without_hash(library.catalog, library.model_id)) == len(written) - 4

    seen = []
    report = library.index(progress=seen.append)
    assert report.encoding.encoded == 0
    assert (seen[-1].done, seen[-1].total, seen[-1].failed) == (len(written) - 4,) * 2 + (0,)
    assert _stored_hashes(library) == written
    assert photos_without_hash(library.catalog, library.model_id) == []
    assert len(find_groups(library.catalog, library.store)) == len(groups)


def test_search_folds_copies_into_one_result(library, copies_dir):
    folder, groups, singles = copies_dir
    library.add_folder(folder)
    library.index()
    everything = len(groups) * 4 + len(singles)
    folded = library.search(SearchQuery(text="red", k=everything))
    assert len(folded) == everything - 2 * 3
    by_path = {r.path: r for r in folded}
    for group in groups:
        shown = [p for p in group if str(p) in by_path]
        assert len(shown) == 1
        assert sorted(by_path[str(shown[0])].similar) == sorted(
            str(p) for p in group if p != shown[0]
        )
    assert all(not by_path[str(p)].similar for p in singles)

    every = library.search(SearchQuery(text="red", k=everything, all_copies=True))
    assert len(every) == everything and all(not r.similar for r in every)
    assert len(library.search(SearchQuery(text="red", k=3))) == 3


def test_search_by_a_copy_leaves_it_out_of_similar(library, copies_dir):
    folder, groups, _ = copies_dir
    library.add_folder(folder)
    library.index()
    results = library.search(SearchQuery(like=groups[0][0], k=5))
    assert str(groups[0][0]) not in {r.path for r in results}
    assert all(str(groups[0][0]) not in r.similar for r in results)
    top = [r for r in results if r.path in {str(p) for p in groups[0]}]
    assert len(top) == 1 and len(top[0].similar) == 2


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture):
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*common, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_duplicates_command_and_search_output(cli, copies_dir):
    folder, groups, _ = copies_dir
    assert cli("duplicates")[1].startswith("no near-duplicates found")
    assert cli("folders", "add", str(folder))[0] == 0
    assert cli("index")[0] == 0

    code, out, _ = cli("duplicates", "--json")
    assert code == 0
    listed = json.loads(out)
    assert len(listed) == 2
    for group in listed:
        assert len(group["photos"]) == 4
        best = group["photos"][0]
        assert (best["width"], best["height"]) == (320, 240)
        assert group["bytes"] == sum(p["bytes"] for p in group["photos"])
        assert all(p["bytes"] == Path(p["path"]).stat().st_size for p in group["photos"])

    code, out, _ = cli("duplicates")
    assert code == 0 and out.startswith("2 groups of near-duplicates; the 6 copies")
    assert "best      320x240" in out and str(groups[1][2]) in out

    code, out, _ = cli("search", "red", "-k", "20")
    assert out.count("(+3 similar)") == 2
    code, out, _ = cli("search", "red", "-k", "20", "--json")
    similar = [r["similar"] for r in json.loads(out) if r["similar"]]
    assert sorted(len(s) for s in similar) == [3, 3]
    code, out, _ = cli("search", "red", "-k", "20", "--all-copies", "--json")
    assert len(json.loads(out)) == 12


@pytest.mark.needs_default_model
def test_default_model_groups_copies_of_real_photos(default_models_dir: Path, tmp_path: Path):
    """Flickr8k train photos: the first three (sorted) with mirrored, half-size, q30 and
    cropped copies, the next five as distinct photos; with the real default model's vectors."""
    from photosearch.library.facade import Library
    from tests.conftest import DEFAULT_MODEL, FLICKR

    captions = FLICKR / "captions.jsonl"
    if not captions.exists():
        pytest.skip(f"Flickr8k subset not found at {FLICKR}")
    with captions.open() as lines:
        names = sorted(
            json.loads(line)["image"] for line in lines if json.loads(line)["split"] == "train"
        )
    folder = tmp_path / "photos"
    folder.mkdir()
    expected = []
    for number, name in enumerate(names[:8]):
        with Image.open(FLICKR / name) as opened:
            image = opened.convert("RGB")
        image.save(folder / f"{number}.jpg", quality=92)
        if number >= 3:
            continue
        width, height = image.size
        ImageOps.mirror(image).save(folder / f"{number}_mirrored.jpg", quality=90)
        image.resize((width // 2, height // 2), Image.Resampling.LANCZOS).save(
            folder / f"{number}_small.jpg", quality=90
        )
        image.save(folder / f"{number}_q30.jpg", quality=30)
        image.crop((width // 20, height // 20, width - width // 20, height - height // 20)).save(
            folder / f"{number}_cropped.jpg", quality=90
        )
        expected.append(
            sorted(
                str(folder / f"{number}{kind}.jpg")
                for kind in ("", "_mirrored", "_small", "_q30", "_cropped")
            )
        )
    with Library(
        tmp_path / "library", models_dir=default_models_dir, model=DEFAULT_MODEL
    ) as library:
        library.add_folder(folder)
        library.index()
        found = find_groups(library.catalog, library.store)
    assert sorted(sorted(p.path for p in g.photos) for g in found) == sorted(expected)


def test_a_stored_hash_this_module_did_not_write_is_skipped(library, copies_dir):
    """The table is read in one aggregate query; a value that is not hex (38 characters, so
    it passes the query's filter) sends it row by row, skipping that value."""
    folder, groups, singles = copies_dir
    library.add_folder(folder)
    library.index()
    with library.catalog.session() as session:
        session.execute(update(Photo).where(Photo.path == str(singles[0])).values(phash="zz" * 19))
    found = find_groups(library.catalog, library.store)
    assert sorted(sorted(p.path for p in g.photos) for g in found) == sorted(
        sorted(str(p) for p in group) for group in groups
    )


def test_close_hashes_of_some_rows_match_a_brute_force_comparison():
    """A search's results are compared through colour cells, the whole library in a sorted
    window: both must find exactly the pairs a comparison of every two photos finds, colours
    on cell edges included."""
    from photosearch.search.duplicates import DEFAULT_RULES, _close_hashes, _HashTable

    rng = np.random.default_rng(7)
    n = 2_000
    centres = rng.integers(0, 256, (6, 3))
    colour = np.clip(centres[rng.integers(0, 6, n)] + rng.integers(-40, 41, (n, 3)), 0, 255)
    colour[:200] = rng.choice([0, 15, 16, 17, 32, 33, 255], (200, 3))  # on and beside edges
    own = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    copies = rng.integers(0, n, n // 3)  # a third are near copies of another photo
    flips = rng.integers(0, 64, (len(copies), 10))
    for row, source, bits in zip(range(n - len(copies), n), copies, flips, strict=True):
        mask = np.uint64(0)
        for bit in bits[: rng.integers(0, 10)]:
            mask |= np.uint64(1) << np.uint64(bit)
        own[row] = own[source] ^ mask
        colour[row] = np.clip(colour[source] + rng.integers(-20, 21, 3), 0, 255)
    mirror = own[rng.permutation(n)]
    table = _HashTable(np.arange(10, 10 + n), own, mirror, colour.astype(np.int16))

    def bit_count(values: np.ndarray) -> np.ndarray:
        return np.unpackbits(values.view(np.uint8).reshape(*values.shape, 8), axis=-1).sum(-1)

    def brute(rows: np.ndarray, bits: int) -> set[tuple[int, int, int]]:
        """Every photo against every other, without cells or windows."""
        d = np.minimum(
            np.minimum(
                bit_count(own[rows, None] ^ own[None, :]),
                bit_count(own[rows, None] ^ mirror[None, :]),
            ),
            bit_count(mirror[rows, None] ^ own[None, :]),
        )
        apart = np.abs(colour[rows, None, :] - colour[None, :, :]).max(axis=-1)
        near = (d <= bits) & (apart <= DEFAULT_RULES.colour_levels)
        near &= rows[:, None] != np.arange(n)[None, :]
        i, j = np.nonzero(near)
        return set(zip((rows[i] + 10).tolist(), (j + 10).tolist(), d[i, j].tolist(), strict=True))

    some = rng.choice(n, 150, replace=False)
    a, b, d = _close_hashes(table, some, DEFAULT_RULES, 16)
    got = set(zip(a.tolist(), b.tolist(), d.tolist(), strict=True))
    assert got == brute(some, 16) and len(got) > 20
    a, b, d = _close_hashes(table, np.arange(n), DEFAULT_RULES, 12)
    every = {tuple(sorted((x, y))) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    expected = {tuple(sorted((i, j))) for i, j, _ in brute(np.arange(n), 12)}
    assert every == expected
