"""Immich's published CLIP bundles run everywhere with default settings (issue 14).

Real ONNX Runtime sessions over tiny bundles in Immich's exact layout (tests/support/
immich_bundle.py): batch fixed at 1, int32 ids, M-CLIP's two-input text tower, SigLIP's
canonicalize cleaning, NLLB's language prefix, external-data weights; and the real CLI in
subprocesses (index, search, eval, watch, demo) with no flag about batches.
"""

from __future__ import annotations

import json
import os
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from photosearch.errors import BundleError
from photosearch.models.bundle import read_bundle_config
from photosearch.models.runtime import Encoder, run_in_fixed_batches
from photosearch.models.text import (
    LANGUAGE_ENV,
    UnknownLanguage,
    clean_text,
    flores_code,
    query_language,
)
from tests.conftest import make_photo
from tests.support.immich_bundle import (
    COLOUR_RGB,
    IMMICH_DIM,
    IMMICH_SIZE,
    VARIANTS,
    build_immich_bundle,
    image_embedding,
    with_changes,
)

ROOT = Path(__file__).resolve().parent.parent
CAPTIONS = [
    "A dog catching a frisbee.",
    "a  red   car",
    "The sky, blue!",
    "  black\tdog\n",
    "Red car - parked",
    "what's the RED thing?",
    "a photo of a white dog",
    "yellow",
    "a dog\u00a0and a car",
    "",
]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("immich")
    built = {key: build_immich_bundle(root / spec.name, spec) for key, spec in VARIANTS.items()}
    built["int64"] = build_immich_bundle(root / "int64", with_changes("clip", id_type="int64"))
    built["batch3"] = build_immich_bundle(root / "batch3", with_changes("clip", batch=3))
    return built


def flat_pixels(colour: str, spec: str = "clip", count: int = 1) -> np.ndarray:
    mean, std = np.asarray(VARIANTS[spec].mean), np.asarray(VARIANTS[spec].std)
    value = ((np.asarray(COLOUR_RGB[colour]) / 255.0 - mean) / std).astype(np.float32)
    one = np.broadcast_to(value[:, None, None], (3, IMMICH_SIZE, IMMICH_SIZE))
    return np.repeat(one[None], count, axis=0)


def mixed_pixels(count: int) -> np.ndarray:
    colours = list(COLOUR_RGB)
    return np.concatenate([flat_pixels(colours[i % len(colours)]) for i in range(count)])


# --- the helper builds what Immich publishes ------------------------------------------------


def test_bundles_have_immichs_layout_and_graph_signatures(bundles: dict[str, Path]):
    clip = bundles["clip"]
    for rel in (
        "config.json",
        "visual/model.onnx",
        "visual/preprocess_cfg.json",
        "textual/model.onnx",
        "textual/tokenizer.json",
        "textual/tokenizer_config.json",
        "textual/special_tokens_map.json",
    ):
        assert (clip / rel).is_file(), rel
    config = json.loads((clip / "config.json").read_text())
    assert "photosearch" not in config and config["text_cfg"]["context_length"] == 77
    preprocess = json.loads((clip / "visual/preprocess_cfg.json").read_text())
    assert set(preprocess) == {
        "size",
        "mode",
        "mean",
        "std",
        "interpolation",
        "resize_mode",
        "fill_color",
    }
    assert (
        json.loads((clip / "textual/tokenizer_config.json").read_text())["pad_token"]
        == "<|endoftext|>"
    )

    def signature(path: Path) -> list[tuple]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [(i.name, i.type, i.shape) for i in session.get_inputs()]

    assert signature(clip / "visual/model.onnx") == [
        ("image", "tensor(float)", [1, 3, IMMICH_SIZE, IMMICH_SIZE])
    ]
    assert signature(clip / "textual/model.onnx") == [("text", "tensor(int32)", [1, 77])]
    assert signature(bundles["dynamic"] / "visual/model.onnx")[0][2][0] == "batch_size"
    assert signature(bundles["mclip"] / "textual/model.onnx") == [
        ("input_ids", "tensor(int32)", [1, 77]),
        ("attention_mask", "tensor(int32)", [1, 77]),
    ]
    assert signature(bundles["siglip"] / "textual/model.onnx") == [
        ("text", "tensor(int32)", [1, 64])
    ]
    siglip_cfg = json.loads((bundles["siglip"] / "config.json").read_text())
    assert siglip_cfg["text_cfg"]["tokenizer_kwargs"] == {"clean": "canonicalize"}
    external = bundles["external"]
    assert (external / "visual/visual.proj").is_file()
    assert (external / "textual/token_embedding.weight").is_file()
    assert (external / "visual/model.onnx").stat().st_size < 1000  # weights live beside it


def test_the_fixed_batch_graph_really_refuses_other_batches(bundles: dict[str, Path]):
    """What `index` hit before issue 14: the reason the runtime must chunk."""
    session = ort.InferenceSession(
        str(bundles["clip"] / "visual/model.onnx"), providers=["CPUExecutionProvider"]
    )
    with pytest.raises(Exception, match="dimensions"):
        session.run(None, {"image": mixed_pixels(8)})


# --- batches --------------------------------------------------------------------------------


def test_batch_one_bundle_encodes_any_batch_like_one_at_a_time(bundles: dict[str, Path]):
    encoder = Encoder(bundles["clip"], threads=1)
    assert encoder.visual_inputs()[0].fixed_batch == 1
    pixels = mixed_pixels(8)
    vectors = encoder.encode_images(pixels)
    assert vectors.shape == (8, IMMICH_DIM)
    for i, colour in enumerate(list(COLOUR_RGB) + list(COLOUR_RGB)[:2]):
        np.testing.assert_allclose(vectors[i], image_embedding(COLOUR_RGB[colour]), atol=1e-5)
    assert encoder.encode_images(pixels[:0]).shape == (0, IMMICH_DIM)
    encoder.release_memory()  # a batch-1 graph takes the shrink run too
    np.testing.assert_array_equal(encoder.encode_images(pixels), vectors)


def test_dynamic_and_fixed_batch_bundles_give_the_same_vectors(bundles: dict[str, Path]):
    pixels = mixed_pixels(7)
    dynamic = Encoder(bundles["dynamic"], threads=1)
    assert dynamic.visual_inputs()[0].fixed_batch is None
    fixed = Encoder(bundles["clip"], threads=1).encode_images(pixels)
    np.testing.assert_allclose(dynamic.encode_images(pixels), fixed, atol=1e-6)
    np.testing.assert_allclose(
        Encoder(bundles["batch3"], threads=1).encode_images(pixels), fixed, atol=1e-6
    )  # 3 + 3 + a topped-up last run of 1


def test_run_in_fixed_batches_feeds_exactly_the_fixed_size():
    seen: list[int] = []

    def run(rows: np.ndarray) -> np.ndarray:
        seen.append(len(rows))
        return rows * 2

    rows = np.arange(7, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(run_in_fixed_batches(rows, 3, run), rows * 2)
    assert seen == [3, 3, 3]
    seen.clear()
    run_in_fixed_batches(rows, None, run)
    assert seen == [7]


def test_external_data_weights_load_and_match_inline_weights(bundles: dict[str, Path]):
    pixels = mixed_pixels(3)
    inline, external = Encoder(bundles["clip"], threads=1), Encoder(bundles["external"], threads=1)
    np.testing.assert_allclose(
        external.encode_images(pixels), inline.encode_images(pixels), atol=1e-6
    )
    np.testing.assert_allclose(
        external.encode_texts(["a red car"]), inline.encode_texts(["a red car"]), atol=1e-6
    )


def test_a_visual_size_the_graph_does_not_take_is_a_clear_error(bundles: dict[str, Path]):
    encoder = Encoder(bundles["clip"], threads=1)
    with pytest.raises(BundleError, match=r"takes 3x32x32 pixels but was given 3x64x64"):
        encoder.encode_images(np.zeros((2, 3, 64, 64), np.float32))


# --- text ids: dtype, two inputs, cleaning, language ------------------------------------------


def test_int32_and_int64_text_graphs_give_the_same_vectors(bundles: dict[str, Path]):
    int32, int64 = Encoder(bundles["clip"], threads=1), Encoder(bundles["int64"], threads=1)
    assert int32.textual_inputs()[0].element_type == "tensor(int32)"
    assert int64.textual_inputs()[0].element_type == "tensor(int64)"
    np.testing.assert_array_equal(int32.encode_texts(CAPTIONS), int64.encode_texts(CAPTIONS))


def test_text_search_finds_the_colour_on_a_batch_one_bundle(bundles: dict[str, Path]):
    encoder = Encoder(bundles["clip"], threads=1)
    images = encoder.encode_images(mixed_pixels(6))
    texts = encoder.encode_texts([f"a photo of a {c} car" for c in COLOUR_RGB])
    assert list((texts @ images.T).argmax(axis=1)) == list(range(6))
    assert len(encoder.tokenize("a red car")) == 77  # padded to the graph's fixed length


def test_two_input_text_tower_gets_ids_and_mask(bundles: dict[str, Path]):
    encoder = Encoder(bundles["mclip"], threads=1)
    assert [i.name for i in encoder.textual_inputs()] == ["input_ids", "attention_mask"]
    tokenizer = Tokenizer.from_file(str(bundles["mclip"] / "textual/tokenizer.json"))
    tokenizer.enable_padding(length=77, pad_id=tokenizer.token_to_id("<pad>"), pad_token="<pad>")
    encoding = tokenizer.encode("a red dog")
    session = ort.InferenceSession(
        str(bundles["mclip"] / "textual/model.onnx"), providers=["CPUExecutionProvider"]
    )
    expected = session.run(
        None,
        {
            "input_ids": np.asarray([encoding.ids], np.int32),
            "attention_mask": np.asarray([encoding.attention_mask], np.int32),
        },
    )[0][0]
    np.testing.assert_allclose(encoder.encode_texts(["a red dog"])[0], expected, atol=1e-6)
    # the mask matters: an all-ones mask would average the padding in
    assert sum(encoding.attention_mask) == 4
    images = encoder.encode_images(mixed_pixels(6))
    assert int((encoder.encode_texts(["blue"]) @ images.T).argmax()) == 2


def immich_reference_clean(text: str, canonicalize: bool) -> str:
    """Immich's documented rule, written out here independently of the app's code: collapse
    whitespace, then (canonicalize) delete string.punctuation and lower-case."""
    text = " ".join(text.split())
    if canonicalize:
        text = "".join(ch for ch in text if ch not in string.punctuation).lower()
    return text


def reference_ids(bundle: Path, text: str, canonicalize: bool, length: int) -> list[int]:
    tokenizer = Tokenizer.from_file(str(bundle / "textual/tokenizer.json"))
    pad_token = json.loads((bundle / "textual/tokenizer_config.json").read_text())["pad_token"]
    tokenizer.enable_padding(
        length=length, pad_token=pad_token, pad_id=tokenizer.token_to_id(pad_token)
    )
    tokenizer.enable_truncation(max_length=length)
    return tokenizer.encode(immich_reference_clean(text, canonicalize)).ids


def test_siglip_canonicalize_token_ids_match_the_reference(bundles: dict[str, Path]):
    bundle = bundles["siglip"]
    assert read_bundle_config(bundle).canonicalize
    encoder = Encoder(bundle, threads=1)
    differs_without_cleaning = 0
    for caption in CAPTIONS:
        ids = encoder.tokenize(caption)
        assert ids == reference_ids(bundle, caption, True, 64), caption
        differs_without_cleaning += ids != reference_ids(bundle, caption, False, 64)
    assert differs_without_cleaning == 4  # punctuation and capitals really change the ids
    assert encoder.prepare_text("Red car - parked!") == "red car  parked"  # Immich's order


def test_whitespace_is_collapsed_on_every_model(bundles: dict[str, Path]):
    for key in ("mclip", "clip", "nllb"):
        encoder = Encoder(bundles[key], threads=1, language="eng_Latn")
        np.testing.assert_array_equal(
            encoder.encode_texts(["  a  red\tdog\n"]), encoder.encode_texts(["a red dog"])
        )
    bundle = bundles["mclip"]  # a SentencePiece tokenizer sees doubled spaces unless collapsed
    assert not read_bundle_config(bundle).canonicalize
    assert reference_ids(bundle, "a  red dog", False, 77) == Encoder(bundle, threads=1).tokenize(
        "a  red dog"
    )
    raw = Tokenizer.from_file(str(bundle / "textual/tokenizer.json"))
    assert raw.encode("a  red dog").ids != raw.encode("a red dog").ids
    assert clean_text("What's  up?") == "What's up?"  # no canonicalize: punctuation stays


def test_nllb_queries_get_the_flores_prefix(
    bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    bundle = bundles["nllb"]
    assert read_bundle_config(bundle).language_prefix
    assert not read_bundle_config(bundles["siglip"]).language_prefix
    vocab = Tokenizer.from_file(str(bundle / "textual/tokenizer.json")).get_vocab()
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", LANGUAGE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C")
    default = Encoder(bundle, threads=1)
    assert default.prepare_text("a red dog") == "eng_Latna red dog"  # Immich: code glued on
    assert default.tokenize("a red dog")[0] == vocab["eng_Latn"]
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert Encoder(bundle, threads=1).tokenize("a red dog")[0] == vocab["deu_Latn"]
    monkeypatch.setenv(LANGUAGE_ENV, "fr")
    french = Encoder(bundle, threads=1)
    assert french.tokenize("a red dog")[0] == vocab["fra_Latn"]
    assert not np.allclose(french.encode_texts(["a red dog"]), default.encode_texts(["a red dog"]))
    assert Encoder(bundle, threads=1, language="spa_Latn").tokenize("dog")[0] == vocab["spa_Latn"]
    assert Encoder(bundles["clip"], threads=1).prepare_text("a red dog") == "a red dog"
    monkeypatch.setenv(LANGUAGE_ENV, "klingon")
    with pytest.raises(UnknownLanguage, match="unknown language 'klingon'"):
        Encoder(bundle, threads=1).encode_texts(["dog"])
    Encoder(bundles["clip"], threads=1).encode_texts(["dog"])  # only NLLB models care
    with pytest.raises(BundleError, match="has no language code kor_Hang"):
        Encoder(bundle, threads=1, language="ko").encode_texts(["dog"])


def test_language_settings_resolve_like_a_user_expects(monkeypatch: pytest.MonkeyPatch):
    assert flores_code("pt_BR.UTF-8") == "por_Latn"
    assert flores_code("zh-TW") == "zho_Hant" and flores_code("zh_CN") == "zho_Hans"
    assert flores_code("fra_Latn") == "fra_Latn" and flores_code("ja") == "jpn_Jpan"
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", LANGUAGE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("LANG", "nb_NO.UTF-8")
    assert query_language() == "nob_Latn"
    monkeypatch.setenv("LANG", "xx_YY")
    monkeypatch.setattr("locale.getlocale", lambda *_: (None, None))
    assert query_language() == "eng_Latn"


# --- the real CLI with default settings -----------------------------------------------------


def cli(tmp: Path, *args: str, models: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "photosearch",
        "--library",
        str(tmp / "library"),
        "--models-dir",
        str(models),
        "--model",
        "ViT-B-32__openai",
        *args,
    ]


def run_cli(tmp: Path, *args: str, models: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(tmp, *args, models=models),
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=120,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def immich_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_immich_bundle(models / "ViT-B-32__openai", "clip", extras=True)
    return models


def test_index_search_eval_and_demo_with_a_batch_one_bundle(tmp_path: Path, immich_models: Path):
    photos = tmp_path / "photos"
    colours = ["red", "green", "blue", "yellow", "white", "black"]
    for i, colour in enumerate(colours * 2):  # 12 photos: more than one default batch
        make_photo(photos / f"{colour}-{i}.jpg", colour, size=(64 + i, 48))
    assert run_cli(tmp_path, "folders", "add", str(photos), models=immich_models).returncode == 0
    index = run_cli(tmp_path, "index", "--json", models=immich_models)
    assert index.returncode == 0, index.stderr
    assert json.loads(index.stdout)["encoded"] == 12 and json.loads(index.stdout)["failed"] == 0
    search = run_cli(tmp_path, "search", "a blue car", "-k", "2", "--json", models=immich_models)
    assert search.returncode == 0, search.stderr
    assert [Path(r["path"]).name.split("-")[0] for r in json.loads(search.stdout)] == [
        "blue",
        "blue",
    ]

    lines = [
        json.dumps({"image": f"photos/{c}-{i}.jpg", "captions": [f"a {c} photo"], "split": "val"})
        for i, c in enumerate(colours)
    ]
    (tmp_path / "captions.jsonl").write_text("\n".join(lines) + "\n")
    evaluation = run_cli(
        tmp_path, "eval", str(tmp_path / "captions.jsonl"), "--json", models=immich_models
    )
    assert evaluation.returncode == 0, evaluation.stderr
    assert json.loads(evaluation.stdout)["images"] == 6

    demo = run_cli(
        tmp_path, "demo", "a yellow photo", "--photos", str(photos), "-k", "2", models=immich_models
    )
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.count("yellow-") == 2


def test_eval_without_model_flag_uses_the_model_the_library_chose(
    tmp_path: Path, immich_models: Path
):
    """`models use NAME` then `eval`: the report is about NAME, not the offline default."""
    base = [
        sys.executable,
        "-m",
        "photosearch",
        "--library",
        str(tmp_path / "library"),
        "--models-dir",
        str(immich_models),
    ]
    use = subprocess.run(
        [*base, "models", "use", "ViT-B-32__openai"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert use.returncode == 0, use.stderr
    photos = tmp_path / "photos"
    colours = ["red", "green", "blue"]
    for i, colour in enumerate(colours):
        make_photo(photos / f"{colour}.jpg", colour, size=(64 + i, 48))
    (tmp_path / "captions.jsonl").write_text(
        "".join(
            json.dumps({"image": f"photos/{c}.jpg", "captions": [f"a {c} photo"]}) + "\n"
            for c in colours
        )
    )
    evaluation = subprocess.run(
        [*base, "eval", str(tmp_path / "captions.jsonl"), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads(evaluation.stdout)
    assert report["model"].startswith("ViT-B-32__openai@") and report["images"] == 3
    assert not (immich_models / "conse-lite0-minilm").exists()


def test_watch_indexes_new_photos_with_a_batch_one_bundle(tmp_path: Path, immich_models: Path):
    photos = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue"]):
        make_photo(photos / f"{colour}.jpg", colour, size=(60 + i, 40))
    assert run_cli(tmp_path, "folders", "add", str(photos), models=immich_models).returncode == 0
    process = subprocess.Popen(
        cli(tmp_path, "watch", "--settle", "0.2", models=immich_models),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    lines: list[str] = []
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "caught up" in line:
                break
        for i in range(4):  # real folder events, after the watcher is running
            make_photo(photos / "new" / f"white-{i}.jpg", "white", size=(50 + i, 70))
        deadline = time.monotonic() + 30
        found: list[str] = []
        while time.monotonic() < deadline and len(found) < 2:
            time.sleep(0.3)
            search = run_cli(tmp_path, "search", "white", "-k", "2", "--json", models=immich_models)
            if search.returncode == 0:
                found = [
                    Path(r["path"]).name
                    for r in json.loads(search.stdout)
                    if Path(r["path"]).name.startswith("white")
                ]
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert len(found) == 2, output
    assert "invalid dimensions" not in output and "failed" not in output.lower(), output


def test_training_reports_measure_a_batch_one_bundle(tmp_path: Path, immich_models: Path):
    """plugins/photosearch_train/report.py encodes in batches of 16 through the Encoder."""
    sys.path.insert(0, str(ROOT / "plugins"))
    from photosearch_train.report import bundle_vectors

    images = [make_photo(tmp_path / f"{c}.jpg", c) for c in ("red", "blue", "green")] * 6
    vectors, texts = bundle_vectors(
        immich_models / "ViT-B-32__openai", images, ["red", "blue", "green"], threads=1
    )
    assert vectors.shape == (18, IMMICH_DIM) and texts.shape == (3, IMMICH_DIM)
    assert list((texts @ vectors[:3].T).argmax(axis=1)) == [0, 1, 2]


# --- image preprocessing: torchvision's arithmetic, bounded JPEG drafts ----------------------


def torchvision_resize(width: int, height: int, size: int) -> tuple[int, int]:
    """torchvision.transforms.functional._compute_resized_output_size, written out."""
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def test_resize_and_crop_arithmetic_is_torchvisions():
    from photosearch.files.imaging import centre_crop_box, resized_size

    for width, height in [
        (500, 375),
        (375, 500),
        (500, 333),
        (401, 300),
        (224, 224),
        (640, 427),
        (3000, 4000),
        (500, 281),
        (1000, 224),
        (225, 1000),
    ]:
        assert resized_size((width, height), 224) == torchvision_resize(width, height, 224)
    assert resized_size((500, 375), 224) == (298, 224)  # 298.67 truncated, not rounded to 299
    for side in range(224, 320):
        left = int(round((side - 224) / 2.0))  # torchvision's CenterCrop
        assert centre_crop_box((side, 224), 224) == (left, 0, left + 224, 224)
    assert centre_crop_box((299, 224), 224)[0] == 38  # half-way rounds to even, as Python's


def test_model_input_of_a_4_by_3_photo_follows_torchvision(tmp_path: Path):
    from PIL import Image

    from photosearch.files.imaging import to_model_input
    from photosearch.models.bundle import Preprocessing

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8))
    pre = Preprocessing(size=224, mean=(0, 0, 0), std=(1, 1, 1))
    expected = image.resize((298, 224), Image.Resampling.BICUBIC).crop((37, 0, 261, 224))
    got = to_model_input(image, pre)
    np.testing.assert_allclose(
        got, np.asarray(expected, np.float32).transpose(2, 0, 1) / 255, atol=1e-6
    )
    squash = to_model_input(
        image, Preprocessing(size=224, resize_mode="squash", mean=(0, 0, 0), std=(1, 1, 1))
    )
    np.testing.assert_allclose(
        squash,
        np.asarray(image.resize((224, 224), Image.Resampling.BICUBIC), np.float32).transpose(
            2, 0, 1
        )
        / 255,
        atol=1e-6,
    )


def test_jpeg_drafts_keep_at_least_twice_the_model_size(tmp_path: Path):
    from PIL import Image

    from photosearch.files.imaging import DRAFT_MARGIN, decode_for_model, load_image, to_model_input
    from photosearch.models.bundle import Preprocessing

    pre = Preprocessing(size=224)
    rng = np.random.default_rng(1)
    small = tmp_path / "small.jpg"  # 500x461: drafted to 250x231 before; now decoded whole
    Image.fromarray(rng.integers(0, 255, (461, 500, 3), dtype=np.uint8)).save(small)
    reference = to_model_input(load_image(small)[0], pre)
    np.testing.assert_array_equal(decode_for_model(small, pre).pixels, reference)
    assert not np.array_equal(to_model_input(load_image(small, min_size=224)[0], pre), reference)

    large = tmp_path / "large.jpg"  # 2400x1800: a 1/4 draft (600x450) still keeps 2 x 224
    Image.fromarray(rng.integers(0, 255, (180, 240, 3), dtype=np.uint8)).resize((2400, 1800)).save(
        large
    )
    assert DRAFT_MARGIN == 2
    drafted = load_image(large, min_size=224 * DRAFT_MARGIN)[0]
    assert drafted.size == (600, 450)
    np.testing.assert_array_equal(decode_for_model(large, pre).pixels, to_model_input(drafted, pre))


def test_indexing_decodes_as_decode_for_model_does(tmp_path: Path):
    """The indexing pipeline's worker processes draft a JPEG exactly as decode_for_model does
    (it used to draft down to 1x the model size there, 2x elsewhere), whatever the bundle's own
    margin: the vector indexed for a photo is the one `search --like` and eval compute."""
    from PIL import Image

    from photosearch.files.decode_pool import DecodePool
    from photosearch.files.imaging import decode_for_model, load_image
    from photosearch.models.bundle import Preprocessing

    rng = np.random.default_rng(2)
    photo = tmp_path / "photo.jpg"  # 1000x800: a 1x draft would halve it, a 2x one must not
    Image.fromarray(rng.integers(0, 255, (100, 125, 3), dtype=np.uint8)).resize((1000, 800)).save(
        photo
    )
    for pre, expected_decode in (
        (Preprocessing(size=224), (1000, 800)),
        (Preprocessing(size=224, draft_margin=1), (500, 400)),
    ):
        with DecodePool(1, pre) as pool:
            indexed = pool.submit(str(photo)).result()
        np.testing.assert_array_equal(indexed.pixels, decode_for_model(photo, pre).pixels)
        assert load_image(photo, min_size=224 * (pre.draft_margin or 2))[0].size == expected_decode


def test_cli_language_option_reaches_nllb_queries(tmp_path: Path):
    models = tmp_path / "models"
    build_immich_bundle(models / "nllb-clip-base-siglip__v1", "nllb")
    make_photo(tmp_path / "photos" / "red.jpg", "red")
    make_photo(tmp_path / "photos" / "blue.jpg", "blue")
    base = [
        sys.executable,
        "-m",
        "photosearch",
        "--library",
        str(tmp_path / "library"),
        "--models-dir",
        str(models),
        "--model",
        "nllb-clip-base-siglip__v1",
    ]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120
        )

    assert run("folders", "add", str(tmp_path / "photos")).returncode == 0
    assert run("index").returncode == 0
    french = run("search", "blue", "-k", "1", "--language", "fr", "--json")
    assert french.returncode == 0, french.stderr
    assert Path(json.loads(french.stdout)[0]["path"]).name == "blue.jpg"
    bad = run("search", "blue", "--language", "klingon")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "photosearch: unknown language 'klingon': give a FLORES-200 code such as fra_Latn, or "
        "a language like fr or pt_BR (in $PHOTOSEARCH_LANGUAGE or --language)"
    ]
