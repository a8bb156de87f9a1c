"""Float32 vectors of chosen photos read from a saved graph file, without loading the graph.

A store that searches its float16 matrix exactly (vector_file) still re-scores the best few in
float32, and "more like this" needs a photo's own vector. Loading hnswlib's graph for that
would hold the whole file in memory (168 MB at 100k photos, 1.7 GB at 1M). The graph file's
level-0 block keeps every vector at a fixed offset, so a few are read with one ``pread`` each:
nothing stays resident (a memory map would keep every page a search ever touched).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from photosearch.vectors import graph_integrity

LABEL_SCAN_ROWS = 16_384  # elements read at a time when the rows of live ids must be found


class SavedGraphVectors:
    """Reads float32 vectors by photo id from a verified graph file.

    ``ids`` are the live ids in the order vector_file wrote them: the graph's level-0 order
    without the ``deleted`` labels, so with none deleted row i of the graph holds ids[i]."""

    def __init__(self, graph: Path, ids: np.ndarray, deleted: set[int], dim: int) -> None:
        self._path = graph
        self._ids = ids
        self._deleted = deleted
        self._dim = dim
        with graph.open("rb") as handle:
            fields = graph_integrity._HEADER.unpack(handle.read(graph_integrity._HEADER.size))
        self._count, self._per_element = fields[2], fields[3]
        self._label_offset, self._data_offset = fields[4], fields[5]
        if (self._label_offset - self._data_offset) != 4 * dim:
            raise graph_integrity.GraphFileDamaged(f"{graph.name} holds vectors of another size")
        self._order = np.argsort(ids, kind="stable")
        self._graph_rows: np.ndarray | None = None  # live row i -> level-0 element

    def vectors(self, ids: list[int]) -> np.ndarray:
        """[len(ids), dim] float32; raises KeyError for an id the file does not hold live."""
        rows = self._rows_of(ids)
        graph_rows = self._level0_rows()[rows]
        out = np.empty((len(ids), self._dim), np.float32)
        label = np.empty(1, np.int64)
        descriptor = os.open(self._path, os.O_RDONLY)
        try:
            for i, element in enumerate(graph_rows.tolist()):
                start = graph_integrity._HEADER.size + element * self._per_element
                os.preadv(descriptor, [out[i].view(np.uint8)], start + self._data_offset)
                os.preadv(descriptor, [label.view(np.uint8)], start + self._label_offset)
                if int(label[0]) != ids[i]:
                    raise graph_integrity.GraphFileDamaged(
                        f"{self._path.name}: element {element} holds {label[0]}, not {ids[i]}"
                    )
        finally:
            os.close(descriptor)
        return out

    def _rows_of(self, ids: list[int]) -> np.ndarray:
        wanted = np.asarray(ids, dtype=np.int64)
        found = np.searchsorted(self._ids, wanted, sorter=self._order)
        found = np.minimum(found, len(self._ids) - 1)
        rows = self._order[found] if len(self._ids) else np.zeros(0, np.int64)
        if len(wanted) and (not len(self._ids) or np.any(self._ids[rows] != wanted)):
            missing = wanted[self._ids[rows] != wanted] if len(self._ids) else wanted
            raise KeyError(f"no saved vector for photo {int(missing[0])}")
        return rows

    def _level0_rows(self) -> np.ndarray:
        """The level-0 element of each live id: the same row with nothing deleted; otherwise
        found once by reading the labels a chunk at a time (never the whole file at once)."""
        if self._graph_rows is None:
            if not self._deleted:
                self._graph_rows = np.arange(len(self._ids))
            else:
                gone = np.fromiter(self._deleted, np.int64, len(self._deleted))
                element = np.dtype(
                    {
                        "names": ["label"],
                        "formats": ["<i8"],
                        "offsets": [self._label_offset],
                        "itemsize": self._per_element,
                    }
                )
                live = []
                with self._path.open("rb") as handle:
                    for start in range(0, self._count, LABEL_SCAN_ROWS):
                        rows = min(LABEL_SCAN_ROWS, self._count - start)
                        handle.seek(graph_integrity._HEADER.size + start * self._per_element)
                        labels = np.fromfile(handle, dtype=element, count=rows)["label"]
                        live.append(start + np.flatnonzero(~np.isin(labels, gone)))
                self._graph_rows = np.concatenate(live) if live else np.zeros(0, np.int64)
            if len(self._graph_rows) != len(self._ids):
                raise graph_integrity.GraphFileDamaged(
                    f"{self._path.name} holds {len(self._graph_rows)} live vectors, the matrix "
                    f"{len(self._ids)}"
                )
        return self._graph_rows
