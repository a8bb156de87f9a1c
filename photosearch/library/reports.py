"""What the library reports: a scan, an index run, and its status.

The status is a cheap read: catalog counts and file sizes. It never opens, loads or builds a
model, so it answers at once, also on a machine where the library's model is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from photosearch.catalog import Catalog
from photosearch.catalog import queries as q
from photosearch.catalog.queries import FolderInfo
from photosearch.indexing.encode import IndexResult
from photosearch.indexing.reconcile import ReconcileResult
from photosearch.indexing.text_reading import ReadingStatus
from photosearch.library.model_sets import ModelSets
from photosearch.library.model_switch import ReembedReport, VectorSetInfo


@dataclass(frozen=True)
class ScanReport:
    changes: ReconcileResult
    offline_folders: list[str]
    unreadable: list[tuple[str, str]]
    seconds: float


@dataclass(frozen=True)
class IndexReport:
    scan: ScanReport
    encoding: IndexResult  # for the active model
    switch: ReembedReport | None = None  # encoding for the model being switched to, if any


@dataclass(frozen=True)
class LibraryStatus:
    library: str
    model: str
    model_identity: str | None  # None: the model is not installed (status never builds it)
    folders: list[FolderInfo]
    photos: int
    indexed: int
    failed: int
    pending: int
    index_bytes: int
    catalog_bytes: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    other_models: dict[str, int] = field(default_factory=dict)
    target_model: str | None = None  # the model being switched to (searches use ``model``)
    sets: list[VectorSetInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why), last scan
    text_in_photos: ReadingStatus | None = None  # photosearch.indexing.text_reading


def read_status(
    catalog: Catalog,
    models: ModelSets,
    directory: Path,
    failures_limit: int,
    skipped: list[tuple[str, str]],
    text_in_photos: ReadingStatus | None = None,
) -> LibraryStatus:
    """The status of the library in ``directory``; ``skipped``: what its last scan could not
    read. The active model's identity comes from its installed bundle's config."""
    counts = q.photo_counts(catalog, failures_limit)
    per_model = q.vectors_per_model(catalog)
    sets = models.coverage()
    active = next((s for s in sets if s.active), None)
    identity = active.identity if active else models.identity_of(models.name)
    indexed = per_model.pop(identity, 0) if identity else 0
    return LibraryStatus(
        library=str(directory),
        model=models.name,
        model_identity=identity,
        folders=q.folder_infos(catalog),
        photos=counts.photos,
        indexed=indexed,
        failed=counts.failed,
        pending=counts.photos - indexed - counts.failed,
        index_bytes=active.disk_bytes if active else 0,
        catalog_bytes=q.catalog_bytes(catalog),
        failures=counts.failures,
        other_models=per_model,
        target_model=models.target_name,
        sets=sets,
        skipped=[(p, r) for p, r in skipped],
        text_in_photos=text_in_photos,
    )
