"""The OpenCLIP teacher loader on a small random OpenCLIP model (real open_clip code, a tiny
registered architecture, no weights), and the recipe distilling it into an exported bundle.

open_clip needs torchvision, which does not import beside this project's torch 2.13 CPU
build, so this module skips in CI; it runs in an environment with open_clip_torch installed
(e.g. torch 2.14.1 + torchvision 0.29.1), see docs/training.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
try:
    import open_clip
except Exception as exc:  # ImportError, or torchvision failing to load its operators
    pytest.skip(f"open_clip is not usable here: {exc}", allow_module_level=True)

from photosearch_train import api  # noqa: E402
from photosearch_train.teachers import load_open_clip_teacher  # noqa: E402

from tests.plugins.test_train_recipe import (  # noqa: E402
    COLOURS,
    SHAPES,
    make_captions,
    tiny_config,
)

ARCH = "photosearch-test-tiny-clip"
WORDS = ["a", "the", "is", "photo", *COLOURS, *SHAPES]


def _register_tiny_arch(folder: Path) -> None:
    config = {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 32,
            "head_width": 16,
            "patch_size": 8,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": len(WORDS) + 4,
            "width": 32,
            "heads": 2,
            "layers": 2,
        },
    }
    path = folder / f"{ARCH}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    open_clip.add_model_config(path)


def _clip_style_tokenizer(path: Path) -> None:
    """Word-level stand-in for CLIP's tokenizer.json: <|startoftext|> text <|endoftext|>,
    end-of-text the highest id (CLIP pools there), padding with it as CLIP does."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[
            ("<|startoftext|>", vocab["<|startoftext|>"]),
            ("<|endoftext|>", vocab["<|endoftext|>"]),
        ],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))


def test_open_clip_teacher_computes_what_open_clip_computes(tmp_path: Path) -> None:
    _register_tiny_arch(tmp_path)
    _clip_style_tokenizer(tmp_path / "cache" / "open-clip-tokenizer.json")
    torch.manual_seed(0)
    teacher = load_open_clip_teacher(ARCH, None, tmp_path / "cache")
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None).eval()
    ids, mask = teacher.tokenize(["a red square", "the blue dot is a photo"])
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # open_clip takes full-length rows; the causal mask keeps padding after the
        # end-of-text token from changing what is pooled there.
        full = torch.zeros(len(ids), model.context_length, dtype=ids.dtype)
        full[:, : ids.shape[1]] = ids
        expected_text = model.encode_text(full, normalize=True)
        expected_image = model.encode_image(image, normalize=True)
        torch.testing.assert_close(teacher.textual(ids, mask), expected_text)
        torch.testing.assert_close(teacher.visual(image), expected_image)


def test_recipe_distils_an_open_clip_teacher_into_a_bundle(tmp_path: Path) -> None:
    from photosearch.library.evaluation import evaluate
    from photosearch.models.runtime import Encoder

    _register_tiny_arch(tmp_path)
    captions = make_captions(tmp_path / "data")
    out = tmp_path / "run"
    _clip_style_tokenizer(out / "cache" / "open-clip-tokenizer.json")
    config = tiny_config(
        captions,
        out,
        **{
            "teacher.kind": "open-clip",
            "teacher.open_clip_arch": ARCH,
            "student.text_layers": [0],
            "stage2.text_hard_negatives": False,
        },
    )
    report = api.run_recipe(config)
    assert {"teacher T", "teacher T'", "student S"} <= set(report["models"])
    encoder = Encoder(Path(report["installed"]), threads=1)
    assert encoder.encode_texts(["a red square"]).shape == (1, 16)
    models_dir = Path(config.export.models_dir)
    result = evaluate(captions, "test", models_dir=models_dir, model="tiny-student")
    assert result.images == result.indexed == 3
    assert 0 <= result.text_to_image["R@1"] <= result.text_to_image["R@10"] == 100.0
