"""The dual-encoder interface every teacher and student shares: two torch modules (pixels ->
unit vectors, ids+mask -> unit vectors) plus what a bundle needs to use them: tokenizer file,
preprocessing, context length, pad token. The bottom of the trainer's stack: it imports no
other trainer module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from photosearch.models.bundle import Preprocessing


@dataclass
class DualEncoder:
    """Two towers into one space, and how to feed them. Mutable: training changes weights."""

    name: str
    visual: nn.Module
    textual: nn.Module
    tokenizer_file: Path
    preprocessing: Preprocessing
    context_length: int
    embed_dim: int
    pad_token: str = "[PAD]"
    provenance: dict[str, Any] = field(default_factory=dict)
    _tokenizer: Any = field(default=None, repr=False)

    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            tok = Tokenizer.from_file(str(self.tokenizer_file))
            tok.enable_truncation(self.context_length)
            pad_id = tok.token_to_id(self.pad_token) or 0
            tok.enable_padding(pad_id=pad_id, pad_token=self.pad_token)
            self._tokenizer = tok
        return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Exactly what the app's runtime feeds: padded to the batch's longest, truncated."""
        encodings = self.tokenizer().encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)
        return ids, mask

    def towers(self) -> TowerPair:
        return TowerPair(self.visual, self.textual)


class TowerPair(nn.Module):
    """Both towers as one module, for phases that train them together: ``pair("visual",
    pixels)`` / ``pair("textual", ids, mask)`` go through the pair's own forward, so a DDP (and
    ShardedForward) wrapper around it sees every call. State-dict keys: ``visual.*``,
    ``textual.*``."""

    def __init__(self, visual: nn.Module, textual: nn.Module) -> None:
        super().__init__()
        self.visual, self.textual = visual, textual

    def forward(self, tower: str, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self, tower)(*inputs)
