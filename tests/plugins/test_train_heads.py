"""Projection heads fitted on cached features, vocabulary pruning, and the head-based recipe
(T' = towers + heads, the "teacher" student, pruned vocabulary, int8 embeddings) end to end
on the tiny synthetic captions set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from photosearch_train import api  # noqa: E402
from photosearch_train.config import OptimConfig  # noqa: E402
from photosearch_train.heads import (  # noqa: E402
    HeadData,
    HeadedTextTower,
    ProjectionHead,
    fit_heads,
)
from photosearch_train.vocab import (  # noqa: E402
    kept_token_ids,
    prune_embedding,
    vocab_size,
    write_pruned_tokenizer,
)

from tests.plugins.test_train_recipe import make_captions, tiny_config  # noqa: E402


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_heads_start_as_the_identity() -> None:
    class Bag(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = torch.nn.Embedding(10, 6)

        def forward(self, ids, mask):
            return torch.nn.functional.normalize(self.table(ids).mean(dim=1), dim=-1)

    bag = Bag()
    ids, mask = torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.int64)
    headed = HeadedTextTower(bag, ProjectionHead(6))
    torch.testing.assert_close(headed(ids, mask), bag(ids, mask))
    with_extra = ProjectionHead(6, extra_dim=4)
    vec = torch.nn.functional.normalize(torch.randn(3, 6), dim=-1)
    torch.testing.assert_close(with_extra(vec, torch.randn(3, 4)), vec)


def _split(rng, rotation, images: int, dim: int = 8) -> HeadData:
    """Texts are noisy copies of their image's vector turned by ``rotation``: the identity
    head ranks poorly, a fitted linear head can undo the turn."""
    image = _unit(rng.normal(size=(images, dim)))
    owners = np.repeat(np.arange(images), 2)
    text = _unit(image[owners] @ rotation + 0.05 * rng.normal(size=(len(owners), dim)))
    return HeadData(image, np.zeros((images, 0), np.float32), text, owners)


def test_fit_heads_learns_what_the_identity_misses() -> None:
    from photosearch_train.data import Pairs
    from photosearch_train.metrics import recall_scores

    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    train, val = _split(rng, rotation, 64), _split(rng, rotation, 32)
    val_pairs = Pairs(
        tuple(Path(f"{i}.jpg") for i in range(32)),
        tuple(str(i) for i in range(64)),
        val.caption_image,
        np.arange(0, 64, 2),
        np.full(32, 2),
    )
    fit = fit_heads(
        train,
        val,
        OptimConfig(lr=1e-2, weight_decay=0.0, batch_size=32, epochs=60, warmup_steps=2),
        lambda t, v: recall_scores(t, v, val_pairs),
    )
    start = fit.log[0]["val"]["rsum"]
    assert fit.best["step"] > 0 and fit.best["rsum"] > start + 100, (start, fit.best)
    assert fit.best["rsum"] == max(r["val"]["rsum"] for r in fit.log)


def _wordpiece_tokenizer(path: Path) -> Path:
    """A small BERT-like WordPiece tokenizer: specials, characters, some words and pieces."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tokens += list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    tokens += ["dog", "dogs", "run", "##s", "##ning", "the", "on", "grass", "cat", "zebra", "##ra"]
    tokens += ["piano", "violin", "play", "##ing", "sky", "blue"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tok.save(str(path))
    return path


def test_pruned_vocabulary_encodes_in_vocabulary_text_identically(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    source = _wordpiece_tokenizer(tmp_path / "full.json")
    corpus = ["The dogs running on the grass", "a cat on the grass"]
    kept = kept_token_ids(source, corpus)
    assert len(kept) < vocab_size(source)
    target = tmp_path / "small.json"
    remap = write_pruned_tokenizer(source, target, kept)
    full, small = Tokenizer.from_file(str(source)), Tokenizer.from_file(str(target))
    for text in [*corpus, "the grass on the dogs", "a cat running"]:
        old, new = full.encode(text), small.encode(text)
        assert new.tokens == old.tokens
        assert new.ids == [remap[i] for i in old.ids]
    # Words whose pieces were dropped still tokenise (into characters), never into [UNK].
    assert "[UNK]" not in small.encode("violin playing").tokens
    assert full.encode("violin").tokens[1:-1] == ["violin"] != small.encode("violin").tokens[1:-1]

    table = torch.nn.Sequential(torch.nn.Embedding(vocab_size(source), 5))
    ids = torch.tensor(full.encode(corpus[0]).ids)
    before = table(ids)
    assert prune_embedding(table, vocab_size(source), kept) == "0"
    new_ids = torch.tensor(small.encode(corpus[0]).ids)
    torch.testing.assert_close(table(new_ids), before)


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    """The head-based recipe once on the tiny teacher (a few seconds)."""
    captions = make_captions(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("run")
    config = tiny_config(
        captions,
        out,
        **{
            "finetune_teacher.towers": False,
            "finetune_teacher.head": True,
            "finetune_teacher.head_optim.epochs": 20,
            "student.image_tower": "teacher",
            "student.text_layers": [0, 1, 2, 3],
            "export.prune_vocab": True,
            "export.int8_embeddings": True,
            "export.int8_towers": ["textual"],
            "export.int8_max_drop": 100.0,
            "stage2.head_optim.epochs": 20,
        },
    )
    return config, api.run_recipe(config)


def test_head_recipe_exports_a_pruned_student_the_app_loads(head_run) -> None:
    from photosearch_train.device import setup
    from photosearch_train.workspace import Workspace

    from photosearch.models.runtime import Encoder

    config, report = head_run
    out = Path(config.out_dir)
    assert json.loads((out / "finetune_teacher-head" / "done.json").read_text())["finished"]
    assert {"teacher T", "teacher T'", "student S", "student S int8"} <= set(report["models"])
    vocabulary = json.loads((out / "bundles" / "tiny-student" / "config.json").read_text())
    assert "vocabulary" in json.dumps(vocabulary)
    # The student's text tower is T''s (all layers, head included): same vectors, new ids.
    ws = Workspace(config, setup())
    tprime = ws.finetuned_teacher()
    encoder = Encoder(out / "bundles" / "tiny-student", threads=1)
    texts = ["a red dog", "the ball is green"]
    with torch.no_grad():
        expected = tprime.textual(*tprime.tokenize(texts)).numpy()
    np.testing.assert_allclose(encoder.encode_texts(texts), expected, atol=1e-4)
    assert Encoder(Path(report["installed"]), threads=1).encode_texts(texts).shape == (2, 16)
    # int8 only where asked: the image graph is the float one, the text graph is smaller.
    fp32, int8 = out / "bundles" / "tiny-student", out / "bundles" / "tiny-student-int8"
    visual, textual = "visual/model.onnx", "textual/model.onnx"
    assert (fp32 / visual).read_bytes() == (int8 / visual).read_bytes()
    assert (int8 / textual).stat().st_size < (fp32 / textual).stat().st_size


def test_cached_front_plus_trained_tail_is_the_exported_tower() -> None:
    """The student's tail training runs on cached activations of the frozen blocks: front
    then tail must compute exactly what the whole (exported) image tower computes."""
    from photosearch_conse.conse import ConseSettings, make_visual_module
    from photosearch_conse.efficientnet import EfficientNetLite0
    from photosearch_train.heads import HeadedImageTower
    from photosearch_train.stages.student_head import _Front, _Tail

    torch.manual_seed(0)
    net = EfficientNetLite0(image_size=32).eval()
    matrix = np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)
    visual = HeadedImageTower(
        make_visual_module(matrix, ConseSettings(), net), ProjectionHead(16, 1280)
    ).eval()
    torch.nn.init.normal_(visual.head.extra.weight, std=0.01)
    image = torch.randn(3, 3, 32, 32)
    start = len(net._blocks) - 4
    with torch.no_grad():
        acts = _Front(net, start)(image)
        x = torch.nn.functional.relu6(net._bn0(net._conv_stem(image)))
        for block in net._blocks[:start]:
            x = block(x)
        shape = tuple(x.shape[1:])
        torch.testing.assert_close(_Tail(visual, start, shape)(acts), visual(image))
