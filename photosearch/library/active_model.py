"""ActiveModel: the model a library searches and indexes with, taken as one value.

The encoder, the catalog id of its identity and its HNSW store belong together: a search that
paired one model's text vector with another model's image vectors would return nonsense. So
they are opened together, in one place (``ModelSets.active``), and handed on together.
"""

from __future__ import annotations

from dataclasses import dataclass

from photosearch.models.runtime import Encoder
from photosearch.vectors.store import VectorStore

# the catalog's meta keys for the model searches use and the one a switch is encoding for
ACTIVE_MODEL_KEY = "active_model"
TARGET_MODEL_KEY = "target_model"


@dataclass(frozen=True)
class ActiveModel:
    """One model's name, encoder, catalog id and HNSW store, opened together."""

    name: str
    encoder: Encoder
    model_id: int
    store: VectorStore

    @property
    def identity(self) -> str:
        """The bundle identity its vectors are recorded under."""
        return self.encoder.identity
