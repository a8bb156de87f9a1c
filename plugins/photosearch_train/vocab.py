"""Shrink a text tower's vocabulary to the tokens a corpus uses (plus every single character).

Why: 47 of the 72 MB of a MiniLM-based student are its 30,522-row word-embedding table, and
photo captions use a few thousand word pieces. Kept: special tokens, every token the corpus
texts encode to, and every single-character piece (``c`` and ``##c``), so any word still
tokenises (into more pieces) instead of becoming [UNK]. Greedy longest-match WordPiece gives
identical pieces for any word whose pieces were all kept, so in-vocabulary text encodes to the
same sequence (new ids) and the pruned tower computes the same vectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import nn


def kept_token_ids(tokenizer_file: Path, texts: Sequence[str]) -> list[int]:
    """Sorted old ids to keep (see the module docstring)."""
    data = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    prefix = data["model"].get("continuing_subword_prefix") or "##"
    keep = {t["id"] for t in data.get("added_tokens", [])}
    keep |= {vocab[t] for t in (data["model"].get("unk_token"), "[PAD]") if t in vocab}
    keep |= {i for tok, i in vocab.items() if len(tok) == 1}
    piece = len(prefix) + 1
    keep |= {i for tok, i in vocab.items() if tok.startswith(prefix) and len(tok) == piece}
    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.no_padding()
    tok.no_truncation()
    for enc in tok.encode_batch(list(texts)):
        keep.update(enc.ids)
    return sorted(keep)


def write_pruned_tokenizer(source: Path, target: Path, kept: Sequence[int]) -> dict[int, int]:
    """``target``: ``source`` with only ``kept`` tokens, renumbered in their old order.
    Returns old id -> new id. Handles WordPiece/WordLevel vocabularies, added tokens, the
    template post-processor's special ids and the padding id."""
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    remap = {old: new for new, old in enumerate(kept)}
    vocab: dict[str, int] = data["model"]["vocab"]
    data["model"]["vocab"] = {
        tok: remap[i] for tok, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i in remap
    }
    for added in data.get("added_tokens", []):
        added["id"] = remap[added["id"]]
    post = data.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [remap[i] for i in special["ids"]]
    if data.get("padding"):
        data["padding"]["pad_id"] = remap.get(data["padding"]["pad_id"], 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return remap


def prune_embedding(text_tower: nn.Module, vocab_size: int, kept: Sequence[int]) -> str:
    """Replace the tower's word-embedding table (the nn.Embedding with ``vocab_size`` rows)
    by its ``kept`` rows, in place; returns the module's name."""
    for name, module in text_tower.named_modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Embedding) and child.num_embeddings == vocab_size:
                small = nn.Embedding(len(kept), child.embedding_dim)
                with torch.no_grad():
                    small.weight.copy_(child.weight[torch.as_tensor(list(kept))])
                setattr(module, child_name, small)
                return f"{name}.{child_name}".lstrip(".")
    raise ValueError(f"no embedding table with {vocab_size} rows in the text tower")


def vocab_size(tokenizer_file: Path) -> int:
    data = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
    ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data.get("added_tokens", [])]
    return max(ids) + 1
