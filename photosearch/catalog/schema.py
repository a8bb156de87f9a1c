"""Schema versions as explicit, append-only SQL steps, so every old library can be upgraded.

Each step moves the schema from version N-1 to N. Never edit a released step: add a new one.
Before upgrading, the caller backs the database file up (see Catalog).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

SCHEMA_V1 = [
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE folders (
        id INTEGER PRIMARY KEY, path VARCHAR NOT NULL UNIQUE, added_at DATETIME NOT NULL)""",
    """CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        path VARCHAR NOT NULL UNIQUE, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        content_hash VARCHAR NOT NULL, width INTEGER, height INTEGER, taken_at DATETIME,
        file_time DATETIME NOT NULL, camera VARCHAR, status VARCHAR NOT NULL,
        error VARCHAR, added_at DATETIME NOT NULL)""",
    "CREATE INDEX ix_photos_content_hash ON photos (content_hash)",
    """CREATE TABLE models (
        id INTEGER PRIMARY KEY, identity VARCHAR NOT NULL UNIQUE, name VARCHAR NOT NULL,
        embed_dim INTEGER NOT NULL, created_at DATETIME NOT NULL)""",
    """CREATE TABLE vectors (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        vector BLOB NOT NULL, PRIMARY KEY (photo_id, model_id))""",
]

# v2: folders can be offline (unmounted disk) without losing their photos.
SCHEMA_V2 = [
    "ALTER TABLE folders ADD COLUMN online BOOLEAN NOT NULL DEFAULT 1",
    "ALTER TABLE folders ADD COLUMN last_seen_at DATETIME",
    "CREATE INDEX ix_vectors_model ON vectors (model_id)",
]


# v3: a vanished photo is kept for a while as a tombstone (missing_since set), so a move that
# the watcher sees as a delete and a later create still keeps its id and vectors.
SCHEMA_V3 = [
    "ALTER TABLE photos ADD COLUMN missing_since DATETIME",
    "CREATE INDEX ix_photos_missing_since ON photos (missing_since)",
]


# v4: what a photo says beyond its pixels, for search by words (issue 20): GPS position and the
# place names reverse-geocoded from it, a perceptual hash for near-duplicate grouping, which
# text extractors (OCR) have run on which content, and one FTS5 index of words per photo
# (folder/file names, place names, text read in the photo). The FTS rowid encodes the photo and
# the source (photo_id * 8 + source code, see catalog.text_index) so a photo's rows are found
# and replaced by rowid, and a trigger drops them with the photo.
SCHEMA_V4 = [
    "ALTER TABLE photos ADD COLUMN latitude FLOAT",
    "ALTER TABLE photos ADD COLUMN longitude FLOAT",
    "ALTER TABLE photos ADD COLUMN place_city VARCHAR",
    "ALTER TABLE photos ADD COLUMN place_region VARCHAR",
    "ALTER TABLE photos ADD COLUMN place_country VARCHAR",
    "ALTER TABLE photos ADD COLUMN phash VARCHAR",
    """CREATE TABLE photo_extractions (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        extractor VARCHAR NOT NULL, content_hash VARCHAR NOT NULL,
        text VARCHAR NOT NULL DEFAULT '', finished_at DATETIME NOT NULL,
        PRIMARY KEY (photo_id, extractor))""",
    """CREATE VIRTUAL TABLE photo_terms USING fts5(
        text, tokenize = "unicode61 remove_diacritics 2")""",
    """CREATE TRIGGER photo_terms_follow_photos AFTER DELETE ON photos BEGIN
        DELETE FROM photo_terms WHERE rowid BETWEEN old.id * 8 AND old.id * 8 + 7;
    END""",
]


# v5: a log of which (model, photo) vectors changed, written by triggers so that every writer
# (indexing, rescans, moves, copies, drops, repairs) records its changes without knowing it. A
# vector store's commit point records the last ``seq`` it reflects, so a store in step opens
# without reading every id, and one behind replays only the later rows (see
# photosearch.catalog.vector_changes). The epoch tells a store saved against another catalog file.
# ``seq`` is a rowid, not AUTOINCREMENT: pruning always keeps the newest row, so it never goes
# back. Vectors are only ever inserted and deleted (a changed photo loses its vectors), so no
# UPDATE trigger. Terse on purpose: the whole schema fits SQLite's first page, which is what
# lets `repair` read a damaged file cut in half.
SCHEMA_V5 = [
    "CREATE TABLE vector_log(seq INTEGER PRIMARY KEY,model INT,photo INT)",
    "CREATE TRIGGER vector_added AFTER INSERT ON vectors BEGIN "
    "INSERT INTO vector_log VALUES(NULL,NEW.model_id,NEW.photo_id);END",
    "CREATE TRIGGER vector_removed AFTER DELETE ON vectors BEGIN "
    "INSERT INTO vector_log VALUES(NULL,OLD.model_id,OLD.photo_id);END",
    "CREATE TRIGGER photo_presence AFTER UPDATE OF missing_since ON photos BEGIN "
    "INSERT INTO vector_log SELECT NULL,model_id,photo_id FROM vectors WHERE photo_id=NEW.id;END",
    "INSERT OR REPLACE INTO meta VALUES ('vector_changes_epoch', hex(randomblob(16)))",
]


# v6: the catalog stops keeping a second copy of every vector. A vector row's value is either the
# float32 vector ("inline": a new vector, written with its photo) or a 17-byte reference into the
# model's 16-bit slot file (photosearch.vectors.vector_slots), where the library moves inline
# vectors when it saves and, for an older library, on its first writable open (resumable: each
# chunk commits on its own, and both forms are read). Older photosearch versions would misread a
# reference, hence the version. The model index also keys whether a row is inline, so finding
# those is a lookup, not a scan; replacing it (rather than adding a partial index) keeps the
# schema on SQLite's first page (see v5).
SCHEMA_V6 = [
    "DROP INDEX ix_vectors_model",
    "CREATE INDEX ix_vectors_model ON vectors(model_id,length(vector)!=17)",
]


# v7: a generation for the perceptual hashes of present photos (meta 'h'), which triggers set to a
# new random value whenever a photo row is inserted or deleted or its id, phash or missing_since
# changes, so a file of the hash table written with the generation it was read at
# (photosearch.search.hash_file) is provably current while the two agree: a one-shot search then
# folds copies without reading every photo's hash. Random rather than counted: a catalog copied
# back by hand from an older backup matches a file only if its hashes are those of the file (a
# counter could reach the file's number again with other hashes). UPDATE, not
# REPLACE: an outer INSERT OR IGNORE would turn a REPLACE in a trigger into IGNORE. The schema
# still fits SQLite's first page (see v5) only because the step also renames the v3-v5 triggers
# and the v3 index to short names (no change in what they do, except that the presence trigger
# now also logs a photo's vectors when its hash or id changes: a harmless extra log row), with 7
# bytes to spare: a later step must make room the same way or give that property up.
_TOUCH_HASHES = "UPDATE meta SET value=random()WHERE key='h';"
SCHEMA_V7 = [
    "DROP TRIGGER photo_terms_follow_photos",
    "DROP TRIGGER vector_added",
    "DROP TRIGGER vector_removed",
    "DROP TRIGGER photo_presence",
    "DROP INDEX ix_photos_missing_since",
    "CREATE INDEX gone ON photos(missing_since)",
    "CREATE TRIGGER va AFTER INSERT ON vectors BEGIN "
    "INSERT INTO vector_log VALUES(NULL,NEW.model_id,NEW.photo_id);END",
    "CREATE TRIGGER vr AFTER DELETE ON vectors BEGIN "
    "INSERT INTO vector_log VALUES(NULL,OLD.model_id,OLD.photo_id);END",
    "CREATE TRIGGER pu AFTER UPDATE OF id,phash,missing_since ON photos BEGIN "
    "INSERT INTO vector_log SELECT NULL,model_id,photo_id FROM vectors WHERE photo_id=NEW.id;"
    f"{_TOUCH_HASHES}END",
    "CREATE TRIGGER pd AFTER DELETE ON photos BEGIN "
    f"DELETE FROM photo_terms WHERE rowid BETWEEN OLD.id*8 AND OLD.id*8+7;{_TOUCH_HASHES}END",
    f"CREATE TRIGGER pi AFTER INSERT ON photos BEGIN {_TOUCH_HASHES}END",
    "INSERT OR REPLACE INTO meta VALUES('h',random())",
]


def _run(statements: list[str]) -> Callable[[Connection], None]:
    def step(connection: Connection) -> None:
        for statement in statements:
            connection.execute(text(statement))

    return step


STEPS: list[Callable[[Connection], None]] = [
    _run(SCHEMA_V1),
    _run(SCHEMA_V2),
    _run(SCHEMA_V3),
    _run(SCHEMA_V4),
    _run(SCHEMA_V5),
    _run(SCHEMA_V6),
    _run(SCHEMA_V7),
]
SCHEMA_VERSION = len(STEPS)
