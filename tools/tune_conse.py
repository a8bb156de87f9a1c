"""Choose the ConSE settings on Flickr8k **val**, then report val and test retrieval.

    PYTHONPATH=.:plugins python tools/tune_conse.py --data /work/shared/data/flickr8k-1k
    PYTHONPATH=.:plugins python tools/tune_conse.py --data ... --bundle /path/to/built/bundle

(a maintainer's tool, not shipped in the plugin: it chose the defaults of
``photosearch_conse.conse.ConseSettings``; needs the build-models extra).

EfficientNet logits (of each photo and its mirror image) and MiniLM embeddings (captions and
every candidate class text) are computed once and cached outside the repository; the grid
search then runs in numpy with exactly the head the ONNX graph computes.

Objective (val only): R-sum = text->image R@1+R@5+R@10 + image->text R@1+R@5+R@10.
Text->image: each caption queries the split's images, hit if its own image is in the top K.
Image->text: each image queries the split's 5N captions, hit if any of its own 5 is in the top K.
Test numbers are printed for the chosen setting only; nothing is chosen by looking at them.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from photosearch_conse.classes import load_classes
from photosearch_conse.conse import (
    ConseSettings,
    class_matrix,
    image_vectors_np,
    texts_needed,
)

KS = (1, 5, 10)
CACHE_VERSION = "v1"

# The grid. Class-text options build the class matrix; head options act on the logits.
PROMPT_SETS: dict[str, tuple[str, ...]] = {
    "bare": ("{name}",),
    "article": ("{a} {name}",),
    "photo": ("a photo of {a} {name}.",),
    "picture": ("a picture of {a} {name}.",),
    "ensemble": ("{name}", "{a} {name}", "a photo of {a} {name}.", "a picture of {a} {name}."),
}
MAX_SYNONYMS = (0, 1, 2)
DEFINITION_TEMPLATES = ("{definition}", "{name}: {definition}")
DEFINITION_WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.75, 0.85, 1.0)
CENTERING = (0.0, 0.5, 0.75, 1.0)
TEMPERATURES = (2.0, 3.0, 4.0, 6.0)
TOP_KS = (5, 10, 20, 40)
# Mirror-averaging was never among the best val settings in a first, wider search (and doubles
# the image cost), so the grid keeps it off; the option stays available in ConseSettings.
FLIPS = (False,)

REFERENCE = ConseSettings(
    top_k=10,
    temperature=3.0,
    prompts=("{name}",),
    max_synonyms=0,
    definition_weight=0.0,
    centering=0.0,
    flip_average=False,
)


@dataclass
class Split:
    images: list[str]  # relative paths
    captions: list[str]  # 5 per image, image-major
    caption_image: np.ndarray  # [5N] index of each caption's image


def load_splits(data_dir: Path) -> dict[str, Split]:
    splits: dict[str, Split] = {}
    with (data_dir / "captions.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            split = splits.setdefault(row["split"], Split([], [], np.zeros(0, int)))
            split.images.append(row["image"])
            split.captions.extend(row["captions"])
    for split in splits.values():
        split.caption_image = np.repeat(np.arange(len(split.images)), 5)
        assert len(split.captions) == 5 * len(split.images)
    return splits


def recalls(text_vecs: np.ndarray, image_vecs: np.ndarray, caption_image: np.ndarray) -> dict:
    """Recall@K (percent) in both directions for one split."""
    sims = text_vecs @ image_vecs.T  # [5N, N]
    own = sims[np.arange(len(caption_image)), caption_image]
    t2i_rank = (sims > own[:, None]).sum(axis=1)
    # Image->text: rank of each caption among all captions for its image; best own caption.
    cap_rank = (sims.T[caption_image] > own[:, None]).sum(axis=1)  # [5N]
    i2t_rank = np.full(image_vecs.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(i2t_rank, caption_image, cap_rank)
    out = {f"t2i_R@{k}": 100.0 * float((t2i_rank < k).mean()) for k in KS}
    out.update({f"i2t_R@{k}": 100.0 * float((i2t_rank < k).mean()) for k in KS})
    out["rsum"] = sum(out[f"{d}_R@{k}"] for d in ("t2i", "i2t") for k in KS)
    return out


def fmt(r: dict) -> str:
    t2i = "/".join(f"{r[f't2i_R@{k}']:.1f}" for k in KS)
    i2t = "/".join(f"{r[f'i2t_R@{k}']:.1f}" for k in KS)
    return f"t2i R@1/5/10 {t2i}   i2t R@1/5/10 {i2t}   R-sum {r['rsum']:.1f}"


# ---------------------------------------------------------------------------------------------
# Caches


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "photosearch_conse_tuning"


def _preprocessing():  # noqa: ANN202 - a models.bundle.Preprocessing
    from photosearch_conse.efficientnet import INPUT_MEAN, INPUT_STD

    from photosearch.models.bundle import Preprocessing

    return Preprocessing(
        size=224,
        mean=(INPUT_MEAN,) * 3,
        std=(INPUT_STD,) * 3,
        interpolation="bicubic",
        resize_mode="shortest",
    )


def model_input(path: Path) -> np.ndarray:
    """Exactly the app's preprocessing (photosearch.files.imaging) of one photo: [3,224,224]."""
    from photosearch.files.imaging import decode_for_model

    return decode_for_model(path, _preprocessing()).pixels


def image_logits(data_dir: Path, images: list[str], cache_dir: Path) -> dict[str, np.ndarray]:
    """{'plain': [N,1000], 'mirror': [N,1000]} EfficientNet logits, cached."""
    key = hashlib.sha256("\n".join(images).encode()).hexdigest()[:16]
    path = cache_dir / f"logits-{CACHE_VERSION}-{key}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return {"plain": cached["plain"], "mirror": cached["mirror"]}
    import torch
    from photosearch_conse.efficientnet import load_efficientnet_lite0

    net = load_efficientnet_lite0()
    plain, mirror = [], []
    with torch.inference_mode():
        for start in range(0, len(images), 32):
            batch = torch.from_numpy(
                np.stack([model_input(data_dir / rel) for rel in images[start : start + 32]])
            )
            plain.append(net(batch).numpy())
            mirror.append(net(batch.flip(-1)).numpy())
    result = {"plain": np.concatenate(plain), "mirror": np.concatenate(mirror)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **result)
    return result


def text_vectors(texts: list[str], cache_dir: Path) -> dict[str, np.ndarray]:
    """MiniLM embeddings of ``texts``, cached (only missing texts are embedded)."""
    path = cache_dir / f"texts-{CACHE_VERSION}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as cached:
            known = dict(zip(cached["texts"].tolist(), cached["vectors"], strict=True))
    missing = sorted(set(texts) - known.keys())
    if missing:
        from photosearch_conse.conse import embed_texts_dict

        print(f"embedding {len(missing)} texts with MiniLM ...", flush=True)
        known.update(embed_texts_dict(missing))
        cache_dir.mkdir(parents=True, exist_ok=True)
        names = sorted(known)
        np.savez(path, texts=np.array(names), vectors=np.stack([known[t] for t in names]))
    return known


# ---------------------------------------------------------------------------------------------
# Grid search


def class_options() -> list[ConseSettings]:
    options = []
    for prompts, syn, center in itertools.product(PROMPT_SETS.values(), MAX_SYNONYMS, CENTERING):
        base = ConseSettings(prompts=prompts, max_synonyms=syn, centering=center)
        options.append(base)
        for template, weight in itertools.product(DEFINITION_TEMPLATES, DEFINITION_WEIGHTS[1:]):
            options.append(replace(base, definition_template=template, definition_weight=weight))
    return options


def evaluate(
    settings: ConseSettings, matrix: np.ndarray, logits: dict, text_vecs: np.ndarray, split: Split
) -> dict:
    raw = 0.5 * (logits["plain"] + logits["mirror"]) if settings.flip_average else logits["plain"]
    images = image_vectors_np(raw, matrix, settings.top_k, settings.temperature)
    return recalls(text_vecs, images, split.caption_image)


def grid_search(logits: dict, text_vecs: np.ndarray, split: Split, vectors: dict) -> list:
    classes = load_classes()
    results = []
    options = class_options()
    for n, option in enumerate(options):
        if n % 100 == 0:
            print(f"  class option {n}/{len(options)}", flush=True)
        matrix = class_matrix(option, vectors, classes)
        for temp, top_k, flip in itertools.product(TEMPERATURES, TOP_KS, FLIPS):
            settings = replace(option, temperature=temp, top_k=top_k, flip_average=flip)
            results.append((evaluate(settings, matrix, logits, text_vecs, split), settings))
    return results


def _caption_vectors(split: Split, vectors: dict) -> np.ndarray:
    return np.stack([vectors[c] for c in split.captions]).astype(np.float32)


def bundle_recalls(bundle_dir: Path, data_dir: Path, split: Split) -> dict:
    """Recall computed end to end the way the app does it: photosearch's ONNX runtime Encoder
    with the bundle's own preprocessing config and tokenizer."""
    from photosearch.files.imaging import decode_for_model
    from photosearch.models.runtime import Encoder

    encoder = Encoder(bundle_dir, threads=2)
    pre = encoder.config.preprocessing
    images = [
        encoder.encode_images(
            np.stack([decode_for_model(data_dir / r, pre).pixels for r in split.images[i : i + 16]])
        )
        for i in range(0, len(split.images), 16)
    ]
    texts = [
        encoder.encode_texts(split.captions[i : i + 64]) for i in range(0, len(split.captions), 64)
    ]
    return recalls(np.concatenate(texts), np.concatenate(images), split.caption_image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tune ConSE settings on Flickr8k val.")
    parser.add_argument("--data", type=Path, required=True, help="flickr8k-1k directory")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--show", type=int, default=10, help="print the best N val settings")
    parser.add_argument("--bundle", type=Path, help="also score this built bundle's ONNX on val")
    parser.add_argument(
        "--no-search", action="store_true", help="skip the grid; report the current defaults"
    )
    args = parser.parse_args(argv)

    started = time.time()
    splits = load_splits(args.data)
    val, test = splits["val"], splits["test"]
    logits = {
        name: image_logits(args.data, s.images, args.cache_dir)
        for name, s in (("val", val), ("test", test))
    }
    texts = set(val.captions) | set(test.captions)
    texts.update(texts_needed(ConseSettings(), load_classes()))
    for option in [] if args.no_search else class_options():
        texts.update(texts_needed(option, load_classes()))
    vectors = text_vectors(sorted(texts), args.cache_dir)
    caps = {"val": _caption_vectors(val, vectors), "test": _caption_vectors(test, vectors)}
    print(f"caches ready in {time.time() - started:.0f}s", flush=True)

    if args.no_search:
        best = ConseSettings()
    else:
        results = grid_search(logits["val"], caps["val"], val, vectors)
        results.sort(key=lambda item: -item[0]["rsum"])  # stable: ties keep grid order
        print(f"searched {len(results)} settings on val in {time.time() - started:.0f}s")
        for r, s in results[: args.show]:
            print(f"  val {fmt(r)}  <- {s.describe()}")
        best = results[0][1]

    def score(settings: ConseSettings, split: str) -> dict:
        matrix = class_matrix(settings, vectors)
        return evaluate(settings, matrix, logits[split], caps[split], splits[split])

    print("\nchosen settings:", json.dumps(best.describe()))
    print("defaults match:", best == ConseSettings())
    for name in ("val", "test"):
        print(f"chosen     {name:4s} {fmt(score(best, name))}")
    for name in ("val", "test"):
        print(f"reference  {name:4s} {fmt(score(REFERENCE, name))}")
    if args.bundle:
        for name in ("val", "test"):
            print(
                f"bundle ONNX {name:4s} {fmt(bundle_recalls(args.bundle, args.data, splits[name]))}"
            )
        recorded = json.loads((args.bundle / "config.json").read_text())
        recorded = recorded["photosearch"]["provenance"]["settings"]
        mine = ConseSettings(**{**recorded, "prompts": tuple(recorded["prompts"])})
        print(f"bundle settings, numpy path val {fmt(score(mine, 'val'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
