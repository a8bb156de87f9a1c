"""Near-duplicate groups: resized, recompressed, mirrored and cropped copies of one photo.

Two photos are near-duplicates when their perceptual hashes (photosearch.files.perceptual_hash; each
is also compared with the other's mirror-image hash) are within a few bits and their mean
colours close, or when their model vectors are near and the hashes within a few more bits
(DuplicateRules, with the measurements behind the thresholds). Pairs are found by comparing
every stored hash (in memory, per catalog); the vectors of the pairs whose hashes are only
middling-near are compared; union-find joins pairs into groups. ``find_groups`` lists the
library's groups, ``fold_similar`` folds them in search results.

Nothing here reads or writes a photo file: it works on the catalog and the vector store.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from photosearch.catalog import Catalog
from photosearch.catalog.reads import present_paths
from photosearch.files.perceptual_hash import STORED_DIGITS, StoredHash, hamming, split_stored
from photosearch.search import hash_file
from photosearch.search.query import SearchResult
from photosearch.vectors.store import VectorStore

log = logging.getLogger(__name__)
HASH_GENERATION_KEY = "h"  # meta: the catalog's hash generation (schema v7)


@dataclass(frozen=True)
class DuplicateRules:
    """When two photos count as near-duplicates, chosen on copies of Flickr8k train photos
    (benchmarks/bench_duplicates.py: the highest pairwise recall with precision >= 0.995).
    Mirrored, resized and recompressed copies are within 2 bits of their original and 3 levels
    of its mean colour, cropped ones 6-18 bits and 9 levels; distinct photos are 10 or more
    bits apart. The default model's vectors alone are no evidence (a half-size copy scored
    cosine -0.08, two distinct photos 0.99), but near vectors together with a middling hash
    find most cropped copies; the mean colour keeps same-layout graphics apart."""

    hash_bits: int = 12  # hashes (own, or one against the other's mirror) this close: duplicates
    vector_with_hash: float = 0.93  # ... or vectors this similar (cosine) and hashes within
    hash_bits_with_vector: int = 16  # this many bits
    colour_levels: int = 16  # and in both cases mean colours (0-255 per channel) this close

    def are_duplicates(
        self, cosine: float | None, a: StoredHash | None, b: StoredHash | None
    ) -> bool:
        hash_distance = _hash_distance(a, b)
        if hash_distance is None or not self.same_colour(a, b):  # type: ignore[arg-type]
            return False
        if hash_distance <= self.hash_bits:
            return True
        return (
            cosine is not None
            and cosine >= self.vector_with_hash
            and hash_distance <= self.hash_bits_with_vector
        )

    def same_colour(self, a: StoredHash, b: StoredHash) -> bool:
        return (
            max(abs(x - y) for x, y in zip(a.colour, b.colour, strict=True)) <= self.colour_levels
        )


DEFAULT_RULES = DuplicateRules()


@dataclass(frozen=True)
class DuplicatePhoto:
    """One photo of a group, as plain data for the CLI and the GUI."""

    photo_id: int
    path: str
    size_bytes: int
    width: int | None
    height: int | None
    shown_date: datetime | None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos that are copies of one another, the copy worth keeping first (most pixels,
    then the largest file, then the oldest)."""

    photos: tuple[DuplicatePhoto, ...]

    @property
    def best(self) -> DuplicatePhoto:
        return self.photos[0]

    @property
    def total_bytes(self) -> int:
        return sum(p.size_bytes for p in self.photos)

    @property
    def extra_bytes(self) -> int:
        """What the copies other than the best take up."""
        return self.total_bytes - self.best.size_bytes


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def components(self) -> list[list[int]]:
        members: dict[int, list[int]] = defaultdict(list)
        for item in list(self.parent):
            members[self.find(item)].append(item)
        return list(members.values())


def _hash_distance(a: StoredHash | None, b: StoredHash | None) -> int | None:
    """Bits between two photos' hashes, also trying each against the other's mirror image
    (the two ways differ slightly: a mirror hash has a median of its own)."""
    if a is None or b is None:
        return None
    return min(hamming(a.own, b.own), hamming(a.own, b.mirror), hamming(a.mirror, b.own))


@dataclass(frozen=True)
class _HashTable:
    """Every stored hash as arrays, for comparing one photo against all at numpy speed."""

    ids: np.ndarray  # int64 photo ids
    own: np.ndarray  # uint64
    mirror: np.ndarray  # uint64
    colour: np.ndarray  # int16 [n, 3]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def position(self) -> dict[int, int]:
        return {int(pid): row for row, pid in enumerate(self.ids)}

    def rows_of(self, ids: Sequence[int]) -> np.ndarray:
        """The rows of those of ``ids`` the table holds, in order (a sorted lookup: the
        position dict of every photo cost 0.3 s at 1M in each folding search)."""
        wanted = np.asarray(list(ids), dtype=np.int64)
        if not len(self.ids) or not len(wanted):
            return np.zeros(0, dtype=np.int64)
        order = self._order
        at = np.minimum(np.searchsorted(self.ids, wanted, sorter=order), len(self.ids) - 1)
        rows = order[at]
        return rows[self.ids[rows] == wanted].astype(np.int64)

    @cached_property
    def by_colour(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The colour channel that spreads the photos most, the rows sorted by it and their
        values: kept with the table (a served search reuses it; at 1M sorting took 0.2 s)."""
        channel = int(np.argmax(self.colour.std(axis=0)))
        order = np.argsort(self.colour[:, channel], kind="stable")
        return channel, order, self.colour[order, channel]

    @cached_property
    def _order(self) -> np.ndarray:
        """The rows in id order (the table is read in id order: no sort then)."""
        if bool(np.all(self.ids[1:] > self.ids[:-1])):
            return np.arange(len(self.ids))
        return np.argsort(self.ids, kind="stable")

    @cached_property
    def _cells(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return {}

    def cells(self, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's colour cell (``width`` levels a side in all three channels, as one key),
        and the rows sorted by it with their sorted keys: photos whose mean colours are within
        ``width`` levels lie in the same or a neighbouring cell. Kept per width with the table."""
        if width not in self._cells:
            keys = _cell_keys(self.colour, width)
            order = np.argsort(keys, kind="stable")
            self._cells[width] = (keys, order, keys[order])
        return self._cells[width]

    def get(self, pid: int) -> StoredHash | None:
        row = self.position.get(pid)
        if row is None:
            return None
        red, green, blue = (int(c) for c in self.colour[row])
        return StoredHash(int(self.own[row]), int(self.mirror[row]), (red, green, blue))

    def only(self, ids: set[int]) -> _HashTable:
        keep = np.isin(self.ids, np.fromiter(ids, dtype=np.int64, count=len(ids)))
        return _HashTable(self.ids[keep], self.own[keep], self.mirror[keep], self.colour[keep])


def _hash_table(catalog: Catalog, directory: Path | None = None) -> _HashTable:
    """The stored hashes of present photos (flat ones, with none, left out), kept in memory
    per catalog and read again only when the catalog's hash generation changed since (asked
    only when something committed to it: SQLite's data_version, on a connection of our own):
    a search folds copies without reading 100,000 rows each time. Read from the hash file in
    ``directory`` (the vectors') when it is current (``hash_file``), else from the catalog."""
    with _TABLES_LOCK:
        cached = _TABLES.get(catalog)
        if cached is None:
            cached = _TABLES[catalog] = _CachedTable(catalog.path)
    return cached.current(catalog, directory)


class _CachedTable:
    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()
        self.version: int | None = None
        self.generation: int | None = None
        self.table: _HashTable | None = None
        self._watch: sqlite3.Connection | None = None
        with contextlib.suppress(sqlite3.Error):  # if it cannot open: read every time
            self._watch = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )

    def current(self, catalog: Catalog, directory: Path | None) -> _HashTable:
        with self.lock:
            version = self._version()
            if self.table is not None and version is not None and version == self.version:
                return self.table
            generation = hash_generation(catalog)
            if self.table is None or generation is None or generation != self.generation:
                self.table, self.generation = _load_hash_table(catalog, directory, generation)
            self.version = version
            return self.table

    def _version(self) -> int | None:
        """None where it cannot be asked (read-only media: the catalog is opened immutable)."""
        if self._watch is None:
            return None
        try:
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self._watch.close()
            self._watch = None
            return None

    def __del__(self) -> None:
        if self._watch is not None:
            self._watch.close()


# one per open catalog, gone (and its connection closed) with the catalog
_TABLES: weakref.WeakKeyDictionary[Catalog, _CachedTable] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def hash_generation(catalog: Catalog) -> int | None:
    """The catalog's hash generation (schema v7), None where it has none."""
    return _as_generation(catalog.get_meta(HASH_GENERATION_KEY))


def _as_generation(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _load_hash_table(
    catalog: Catalog, directory: Path | None, generation: int | None
) -> tuple[_HashTable, int | None]:
    """The table and the generation it is of: from the hash file when it was saved at
    ``generation``, else from the catalog."""
    if directory is not None and generation is not None:
        saved = hash_file.read(directory / hash_file.FILE_NAME, generation)
        if saved is not None:
            return _table_of_saved(saved), generation
    return _read_hash_table(catalog)


def save_hash_file(catalog: Catalog, directory: Path) -> bool:
    """Write the hash file into ``directory`` (the library's vectors) unless it is current;
    True when written. For processes that write the library, after they change photos: a
    one-shot search then reads it instead of every photo's hash. Costs a read of the catalog's
    hashes when it writes (0.7 s at 1M photos); a file that cannot be written is logged and
    skipped (searches read the catalog meanwhile)."""
    if catalog.readonly:
        return False
    path = directory / hash_file.FILE_NAME
    generation = hash_generation(catalog)
    if generation is not None and hash_file.read(path, generation) is not None:
        return False
    table, generation = _held_table(catalog, generation) or _read_hash_table(catalog)
    if generation is None:
        return False
    width = _cell_width(DEFAULT_RULES)
    saved = hash_file.SavedHashes(
        generation, table.ids, table.own, table.mirror, table.colour, width, *table.cells(width)
    )
    try:
        hash_file.write(path, saved)
    except OSError as error:
        log.warning("hash file %s not written (%s); searches read the catalog", path, error)
        return False
    return True


def _held_table(catalog: Catalog, generation: int | None) -> tuple[_HashTable, int] | None:
    """The table a search in this process (the app's, a served one) holds, when it is of
    ``generation``: the same rows, so the catalog need not be read again."""
    with _TABLES_LOCK:
        cached = _TABLES.get(catalog)
    if cached is None or generation is None:
        return None
    with cached.lock:
        if cached.table is None or cached.generation != generation:
            return None
        return cached.table, generation


def _table_of_saved(saved: hash_file.SavedHashes) -> _HashTable:
    table = _HashTable(saved.ids, saved.own, saved.mirror, saved.colour)
    table._cells[saved.cell_width] = (saved.cells, saved.cell_order, saved.sorted_cells)
    return table


def _read_hash_table(catalog: Catalog) -> tuple[_HashTable, int | None]:
    """The table from the catalog, and the hash generation read in the same statement (one
    SQLite snapshot: the two agree); None for it where the rows had to be read one by one."""
    # SQLite joins every id and every hash into one string each (the same rows in the same
    # order, one aggregate query): at 1M photos 1.0 s against 2.1 s for a row per photo
    # through Python (benchmarks/bench_million_search.py)
    try:
        with catalog.reading() as connection:
            ids_text, hashes, value = connection.execute(
                "SELECT group_concat(id, ','), group_concat(phash, ''), "
                "(SELECT value FROM meta WHERE key = :key) FROM photos "
                "WHERE missing_since IS NULL AND typeof(phash) = 'text' "
                "AND length(phash) = :digits",
                {"key": HASH_GENERATION_KEY, "digits": STORED_DIGITS},
            ).fetchone()
    except sqlite3.DatabaseError:  # past SQLite's longest string (1 GB: some 26M photos)
        return _table_of(_hash_rows(catalog)), None
    if not ids_text:
        return _table_of([]), _as_generation(value)
    try:
        raw = np.frombuffer(bytes.fromhex(hashes), dtype=np.uint8)
        ids = np.array(ids_text.split(","), dtype=np.int64)
    except ValueError:  # a value this module did not write: parse row by row, skipping it
        return _table_of(_hash_rows(catalog)), None
    return _table_of_raw(ids, raw.reshape(len(ids), STORED_DIGITS // 2)), _as_generation(value)


def _hash_rows(catalog: Catalog) -> list[tuple[int, str]]:
    with catalog.reading() as connection:
        return [
            (pid, value)
            for pid, value in connection.execute(
                "SELECT id, phash FROM photos WHERE missing_since IS NULL AND phash IS NOT NULL"
            )
            if isinstance(value, str) and len(value) == STORED_DIGITS
        ]


def _table_of(rows: list[tuple[int, str]]) -> _HashTable:
    """The table of (id, stored value) rows, skipping any value this module did not write."""
    rows = [(pid, value) for pid, value in rows if split_stored(value) is not None]
    raw = np.frombuffer(bytes.fromhex("".join(value for _, value in rows)), dtype=np.uint8)
    ids = np.array([pid for pid, _ in rows], dtype=np.int64)
    return _table_of_raw(ids, raw.reshape(len(rows), STORED_DIGITS // 2))


def _table_of_raw(ids: np.ndarray, raw: np.ndarray) -> _HashTable:
    return _HashTable(
        ids=ids,
        own=raw[:, :8].copy().view(">u8").ravel().astype(np.uint64),
        mirror=raw[:, 8:16].copy().view(">u8").ravel().astype(np.uint64),
        colour=raw[:, 16:19].astype(np.int16),
    )


def _hash_pairs(
    table: _HashTable, rows: np.ndarray, rules: DuplicateRules
) -> list[tuple[int, int]]:
    """Pairs (a, b), ``a`` at ``rows`` of ``table``, whose hashes are within ``hash_bits``
    (own or mirror) and colours within ``colour_levels``."""
    a, b, distance = _close_hashes(table, rows, rules, rules.hash_bits)
    return list(zip(a.tolist(), b.tolist(), strict=True))


def _close_hashes(
    table: _HashTable, rows: np.ndarray, rules: DuplicateRules, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo ids a (at ``rows`` of ``table``) and b, and the hash distance of each pair (own or
    mirror), for every pair within ``bits`` and colours within ``colour_levels``. Exact. Some
    rows (a search's results) go through the colour cells; all rows (``find_groups``) are
    compared in chunks with the photos after them in one channel's sorted window
    (benchmarks/bench_duplicates.py)."""
    nothing = np.zeros(0, dtype=np.int64)
    if not len(table) or not len(rows):
        return nothing, nothing, nothing
    if len(rows) != len(table):
        return _close_hashes_by_cell(table, rows, rules, bits)
    channel, order, values = table.by_colour
    found_a, found_b, found_distance = [nothing], [nothing], [nothing]
    start = 0
    while start < len(order):  # chunks of rows within ``levels`` of each other: narrow windows
        end = min(
            len(order),
            start + _CHUNK_ROWS,
            int(np.searchsorted(values, values[start] + rules.colour_levels, "right")),
        )
        chunk, low = order[start:end], start  # each pair once: with the photos after it
        start = end
        high = np.searchsorted(values, values[end - 1] + rules.colour_levels, "right")
        a, b, distance = _pairs_within(table, chunk, order[low:high], rules, bits)
        found_a.append(a)
        found_b.append(b)
        found_distance.append(distance)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_distance)


_CHUNK_ROWS = 128  # rows of the distance matrix at a time (128 x 100,000 x 8 B = 100 MB)


def _cell_keys(colour: np.ndarray, width: int) -> np.ndarray:
    """One int64 key per row for its colour cell. A side of ``_cell_side(width)`` cells leaves
    a spare cell past the last, so a neighbour's key (one cell less or more in a channel) is
    never the key of a real cell other than that neighbour."""
    side = _cell_side(width)
    cell = colour.astype(np.int64) // width
    return (cell[:, 0] * side + cell[:, 1]) * side + cell[:, 2]


def _cell_side(width: int) -> int:
    return 256 // width + 2


def _cell_width(rules: DuplicateRules) -> int:
    return max(rules.colour_levels, 1)


def _close_hashes_by_cell(
    table: _HashTable, rows: np.ndarray, rules: DuplicateRules, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_close_hashes`` for some rows (a search's results): each row is compared only with
    the photos in its own and the 26 neighbouring colour cells, which hold every photo whose
    mean colour is within ``colour_levels`` in all three channels. The one-channel window
    left a third of the library per row: folding 2,000 results took 4.8 s at 1M photos."""
    nothing = np.zeros(0, dtype=np.int64)
    width = _cell_width(rules)
    keys, order, sorted_keys = table.cells(width)
    side = _cell_side(width)
    steps = np.array(
        [(a * side + b) * side + c for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)],
        dtype=np.int64,
    )
    row_keys = keys[rows]
    by_key = np.argsort(row_keys, kind="stable")
    distinct, first = np.unique(row_keys[by_key], return_index=True)
    wanted = distinct[:, None] + steps[None, :]
    low = np.searchsorted(sorted_keys, wanted, "left")
    high = np.searchsorted(sorted_keys, wanted, "right")
    bounds = [*first.tolist(), len(rows)]
    found_a, found_b, found_distance = [nothing], [nothing], [nothing]
    for index in range(len(distinct)):
        columns = np.concatenate(
            [order[lo:hi] for lo, hi in zip(low[index], high[index], strict=True) if hi > lo]
            or [nothing]
        )
        in_cell = rows[by_key[bounds[index] : bounds[index + 1]]]
        for start in range(0, len(in_cell), _CHUNK_ROWS):
            a, b, distance = _pairs_within(
                table, in_cell[start : start + _CHUNK_ROWS], columns, rules, bits
            )
            found_a.append(a)
            found_b.append(b)
            found_distance.append(distance)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_distance)


def _pairs_within(
    table: _HashTable, chunk: np.ndarray, columns: np.ndarray, rules: DuplicateRules, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids a (rows ``chunk``) and b (rows ``columns``) and the hash distance of each pair within
    ``bits`` (own or mirror) whose mean colours are within ``colour_levels``."""
    own, theirs = table.own[chunk, None], table.own[None, columns]
    distance = np.minimum(
        np.minimum(_popcount(own ^ theirs), _popcount(own ^ table.mirror[None, columns])),
        _popcount(table.mirror[chunk, None] ^ theirs),
    )
    found, other = np.nonzero(distance <= bits)
    a, b = chunk[found], columns[other]
    apart = np.abs(table.colour[a] - table.colour[b]).max(axis=1)
    keep = (apart <= rules.colour_levels) & (a != b)
    return table.ids[a[keep]], table.ids[b[keep]], distance[found, other][keep].astype(np.int64)


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(values)
    as_bytes = values[..., None].view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def _vector_pairs(
    store: VectorStore, a: np.ndarray, b: np.ndarray, rules: DuplicateRules
) -> list[tuple[int, int]]:
    """The pairs (a, b) among these hash-near ones whose model vectors are similar enough
    (cosine >= ``vector_with_hash``). Only hash-near pairs are looked at, so this costs a few
    dot products, not a vector search per photo (a search per result made folding 1,000
    results an O(results x library) scan under exact search)."""
    if not len(a):
        return []
    live = set(store.held(set(a.tolist()) | set(b.tolist())))
    keep = np.array([x in live and y in live for x, y in zip(a.tolist(), b.tolist(), strict=True)])
    a, b = a[keep], b[keep]
    if not len(a):
        return []
    ids = sorted(set(a.tolist()) | set(b.tolist()))
    vectors = store.get_vectors(ids)
    row = {pid: i for i, pid in enumerate(ids)}
    left = vectors[[row[x] for x in a.tolist()]]
    right = vectors[[row[y] for y in b.tolist()]]
    cosine = np.einsum("ij,ij->i", left, right)
    near = cosine >= rules.vector_with_hash
    return list(zip(a[near].tolist(), b[near].tolist(), strict=True))


def _duplicate_pairs(
    store: VectorStore, ids: Sequence[int], table: _HashTable, rules: DuplicateRules
) -> list[tuple[int, int]]:
    rows = table.rows_of(ids)
    a, b, distance = _close_hashes(table, rows, rules, rules.hash_bits_with_vector)
    sure = distance <= rules.hash_bits
    pairs = list(zip(a[sure].tolist(), b[sure].tolist(), strict=True))
    return pairs + _vector_pairs(store, a[~sure], b[~sure], rules)


def find_groups(
    catalog: Catalog, store: VectorStore, rules: DuplicateRules = DEFAULT_RULES
) -> list[DuplicateGroup]:
    """Every group of two or more near-duplicate photos in the library, the groups whose
    copies take the most space first. Cost: a hash comparison that grows with the square of
    the library (0.3 s for 10,000 photos, 35 s for 100,000) and one neighbour search per
    photo."""
    # photos encoded with the active model: a changed file's hash is stale until re-encoded
    table = _hash_table(catalog, store.directory).only(store.live_ids())
    groups = _UnionFind()
    for a, b in _duplicate_pairs(store, table.ids.tolist(), table, rules):
        groups.union(a, b)
    components = [c for c in groups.components() if len(c) > 1]
    found = _describe(catalog, components)
    return sorted(found, key=lambda g: (-g.extra_bytes, g.best.path))


def _describe(catalog: Catalog, components: list[list[int]]) -> list[DuplicateGroup]:
    from sqlalchemy import select  # the duplicates command and view, not a search

    from photosearch.catalog import Photo

    ids = [pid for component in components for pid in component]
    facts: dict[int, DuplicatePhoto] = {}
    columns = (
        Photo.id,
        Photo.path,
        Photo.size,
        Photo.width,
        Photo.height,
        Photo.taken_at,
        Photo.file_time,
    )
    with catalog.session() as session:
        for start in range(0, len(ids), 900):
            for pid, path, size, width, height, taken_at, file_time in session.execute(
                select(*columns).where(Photo.id.in_(ids[start : start + 900]))
            ):
                facts[pid] = DuplicatePhoto(
                    pid, path, int(size or 0), width, height, taken_at or file_time
                )
    groups = []
    for component in components:
        photos = [facts[pid] for pid in component if pid in facts]
        if len(photos) > 1:
            groups.append(DuplicateGroup(_best_first(photos)))
    return groups


SAME_SIZE = 0.95  # files at least this share of the largest count as the same size


def _best_first(photos: list[DuplicatePhoto]) -> tuple[DuplicatePhoto, ...]:
    """The copy to keep first: most pixels, then the largest file (a re-save within 5% counts
    as the same size), then the oldest; the others by pixels, size, date and path."""
    ordered = sorted(photos, key=_order)
    most = [p for p in ordered if p.pixels == ordered[0].pixels]
    largest = max(p.size_bytes for p in most)
    best = min(
        (p for p in most if p.size_bytes >= SAME_SIZE * largest),
        key=lambda p: (_when(p), -p.size_bytes, p.path),
    )
    return (best, *(p for p in ordered if p is not best))


def _order(photo: DuplicatePhoto) -> tuple:
    return (-photo.pixels, -photo.size_bytes, _when(photo), photo.path)


def _when(photo: DuplicatePhoto) -> float:
    return photo.shown_date.timestamp() if photo.shown_date else float("inf")


def search_folded(
    ranked: Callable[[int], list[SearchResult]],
    depth: int,
    k: int,
    catalog: Catalog,
    store: VectorStore,
    exclude: set[int] | None = None,
) -> list[SearchResult]:
    """``k`` results with near-duplicates folded (``fold_similar``). ``ranked(n)`` gives the
    top ``n`` results; twice ``depth`` are folded, more while copies leave fewer than ``k``."""
    fetch = 2 * depth
    while True:
        results = ranked(fetch)
        folded = fold_similar(results, catalog, store, k, exclude=exclude)
        if len(folded) >= k or len(results) < fetch or fetch >= _MOST_FETCHED * depth:
            return folded
        fetch *= 4


_MOST_FETCHED = 32  # results fetched per result asked for, at most, to fill k after folding


def fold_similar(
    results: list[SearchResult],
    catalog: Catalog,
    store: VectorStore,
    k: int,
    rules: DuplicateRules = DEFAULT_RULES,
    exclude: set[int] | None = None,
) -> list[SearchResult]:
    """Search results with near-duplicates folded: the best-ranked photo of each group stays,
    the others (ranked or not) become its ``similar`` paths; at most ``k`` results.

    Groups are found from the results' own neighbours (one hop), so a long chain of copies
    reaching beyond them may fold less than ``find_groups`` would group.
    """
    ids = [r.photo_id for r in results]
    if not ids:
        return []
    skip = set(exclude or ())
    table = _hash_table(catalog, store.directory)
    groups = _UnionFind()
    for a, b in _duplicate_pairs(store, ids, table, rules):
        if b not in skip:
            groups.union(a, b)
    ranked = {pid: rank for rank, pid in enumerate(ids)}
    members: dict[int, list[int]] = defaultdict(list)
    for pid in list(groups.parent):
        members[groups.find(pid)].append(pid)
    paths = present_paths(catalog, [pid for pid in groups.parent if pid not in ranked])
    paths.update({r.photo_id: r.path for r in results})
    folded: list[SearchResult] = []
    shown: set[int] = set()
    for result in results:
        root = groups.find(result.photo_id) if result.photo_id in groups.parent else None
        if root is not None and root in shown:
            continue
        if root is None:
            folded.append(result)
        else:
            shown.add(root)
            others = sorted(
                (pid for pid in members[root] if pid != result.photo_id and pid in paths),
                key=lambda pid: (ranked.get(pid, len(ids)), paths[pid]),
            )
            folded.append(replace(result, similar=tuple(paths[pid] for pid in others)))
        if len(folded) == k:
            break
    return folded
