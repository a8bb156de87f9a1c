"""How far the app's photo preprocessing (JPEG draft decoding + torchvision-exact resize/crop)
is from the reference (full decode + torchvision-exact resize/crop), in image-vector cosine.

For each model: every photo's reference vector, and the vectors of
- ``before``: the preprocessing before issue 14 (rounded resize, draft down to 1x the input);
- ``margin=M``: this app's, with the draft allowed to shrink a photo while its short side stays
  >= M x the input size (photosearch.files.imaging.DRAFT_MARGIN is the default).
Reported: worst and mean cosine to the reference, photos whose input differs at all, and decode +
preprocess time per photo, full decode vs the default draft (same run, so the ratio is what
counts on a shared machine).

Photo sets: the 1,000 Flickr8k-1k photos (<= 500 px, so a draft rarely applies), and ``large``:
the first --large of them upscaled --upscale times (Lanczos) with fine grain (--grain grey
levels) added and saved as JPEG q92, so that drafts of 1/2-1/8 apply as on camera photos
(synthetic: say so when quoting it).

Models: the default (conse-lite0-minilm, real weights) and a CLIP-architecture bundle: --clip
PATH, else a ViT-B/32 image tower with random weights exported here with torch (Immich layout,
batch fixed at 1), else (no torch) the tiny Immich-layout test bundle. Random weights: the
``unrelated`` line gives the mean cosine between different photos, the scale a cosine means.

    PYTHONPATH=.:plugins nice -n 10 .venv/bin/python benchmarks/bench_preprocess_parity.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosearch.files.imaging import (  # noqa: E402
    DRAFT_MARGIN,
    load_image,
    to_model_input,
)
from photosearch.models.bundle import Preprocessing  # noqa: E402
from photosearch.models.runtime import Encoder  # noqa: E402

FLICKR = Path("/work/shared/data/flickr8k-1k/images")
DEFAULT_MODEL = Path.home() / ".local/share/photosearch/models/conse-lite0-minilm"


def before_issue_14(path: Path, pre: Preprocessing) -> np.ndarray:
    """The preprocessing this replaces: draft to 1x the input, rounded long side, floor crop."""
    image, _ = load_image(path, min_size=pre.size)
    width, height = image.size
    scale = pre.size / min(width, height)
    new_w = max(pre.size, round(width * scale))
    new_h = max(pre.size, round(height * scale))
    image = image.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
    left, top = (new_w - pre.size) // 2, (new_h - pre.size) // 2
    image = image.crop((left, top, left + pre.size, top + pre.size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return ((array - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)).transpose(
        2, 0, 1
    )


def with_margin(margin: float | None) -> Callable[[Path, Preprocessing], np.ndarray]:
    """This app's preprocessing with a draft margin (None: full decode, the reference)."""

    def prepare(path: Path, pre: Preprocessing) -> np.ndarray:
        min_size = None if margin is None else int(pre.size * margin)
        return to_model_input(load_image(path, min_size=min_size)[0], pre)

    return prepare


def make_large_set(photos: list[Path], folder: Path, factor: int, grain: float) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for path in photos:
        with Image.open(path) as image:
            big = image.convert("RGB").resize(
                (image.width * factor, image.height * factor), Image.Resampling.LANCZOS
            )
        noise = rng.normal(0, grain, (big.height, big.width, 1)) if grain else 0.0
        pixels = np.clip(np.asarray(big, np.float32) + noise, 0, 255).astype(np.uint8)
        target = folder / f"{path.stem}-x{factor}.jpg"
        Image.fromarray(pixels).save(target, quality=92)
        out.append(target)
    return out


def random_vit_b32_bundle(folder: Path) -> tuple[Path, str]:
    """A CLIP ViT-B/32 image tower (12 x 768, patch 32, 224 px, 512-d) with random weights,
    exported as Immich does (input `image` [1,3,224,224], L2-normalised `embedding`)."""
    from tests.support.immich_bundle import build_immich_bundle

    bundle = build_immich_bundle(folder / "ViT-B-32__random", "clip")
    try:
        import torch
    except ImportError:
        return bundle, "tiny Immich-layout test bundle (32 px, random; torch not installed)"
    torch.manual_seed(0)
    torch.backends.mha.set_fastpath_enabled(False)

    class VisionTransformer(torch.nn.Module):
        def __init__(
            self,
            width: int = 768,
            layers: int = 12,
            patch: int = 32,
            size: int = 224,
            dim: int = 512,
        ):
            super().__init__()
            scale = width**-0.5
            self.conv1 = torch.nn.Conv2d(3, width, patch, patch, bias=False)
            self.class_embedding = torch.nn.Parameter(scale * torch.randn(width))
            self.positional_embedding = torch.nn.Parameter(
                scale * torch.randn((size // patch) ** 2 + 1, width)
            )
            self.ln_pre = torch.nn.LayerNorm(width)
            layer = torch.nn.TransformerEncoderLayer(
                width,
                width // 64,
                width * 4,
                activation="gelu",
                batch_first=True,
                norm_first=True,
                dropout=0.0,
            )
            self.transformer = torch.nn.TransformerEncoder(
                layer, layers, enable_nested_tensor=False
            )
            self.ln_post = torch.nn.LayerNorm(width)
            self.proj = torch.nn.Parameter(scale * torch.randn(width, dim))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = self.conv1(image).flatten(2).transpose(1, 2)
            cls = self.class_embedding.expand(x.shape[0], 1, -1)
            x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
            x = self.ln_post(self.transformer(x)[:, 0]) @ self.proj
            return torch.nn.functional.normalize(x, dim=-1)

    with torch.no_grad():
        torch.onnx.export(
            VisionTransformer().eval(),
            (torch.randn(1, 3, 224, 224),),
            str(bundle / "visual" / "model.onnx"),
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["embedding"],
        )
    config = json.loads((bundle / "config.json").read_text())
    config.update(
        embed_dim=512, vision_cfg={"image_size": 224, "layers": 12, "width": 768, "patch_size": 32}
    )
    (bundle / "config.json").write_text(json.dumps(config))
    preprocess = json.loads((bundle / "visual" / "preprocess_cfg.json").read_text())
    preprocess["size"] = [224, 224]
    (bundle / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    # the text tower is never run here; embed_dim only matters for the image side
    return bundle, "ViT-B/32 image tower, random weights (exported here with torch)"


def cosine_report(
    encoder: Encoder,
    photos: list[Path],
    variants: dict[str, Callable[[Path, Preprocessing], np.ndarray]],
) -> dict:
    pre = encoder.config.preprocessing
    reference = [with_margin(None)(p, pre) for p in photos]
    ref_vectors = np.concatenate([encoder.encode_images(r[None]) for r in reference])
    report = {}
    for name, prepare in variants.items():
        cosines, differing = [], 0
        for ref, ref_vector, path in zip(reference, ref_vectors, photos, strict=True):
            pixels = prepare(path, pre)
            if np.array_equal(pixels, ref):
                cosines.append(1.0)
                continue
            differing += 1
            cosines.append(float(encoder.encode_images(pixels[None])[0] @ ref_vector))
        report[name] = {
            "worst": min(cosines),
            "mean": float(np.mean(cosines)),
            "differing": differing,
        }
    rng = np.random.default_rng(1)
    pairs = rng.integers(0, len(photos), (min(500, len(photos) * 4), 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    report["unrelated"] = float(
        np.mean(np.sum(ref_vectors[pairs[:, 0]] * ref_vectors[pairs[:, 1]], axis=1))
    )
    return report


def decode_times(
    photos: list[Path], pre: Preprocessing, margins: list[float], rounds: int = 3
) -> dict[str, float]:
    """Best-of-``rounds`` decode + preprocess milliseconds per photo: full decode, and the
    draft at each margin, interleaved round by round so machine load hits all alike."""
    names = {"full": None, **{f"margin={m:g}": m for m in margins}}
    best = dict.fromkeys(names, float("inf"))
    for _ in range(rounds):
        for name, margin in names.items():
            prepare = with_margin(margin)
            started = time.perf_counter()
            for path in photos:
                prepare(path, pre)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: 1000.0 * seconds / len(photos) for name, seconds in best.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=FLICKR)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100, help="photos in the upscaled set")
    parser.add_argument("--upscale", type=int, default=4, help="factor for the large set")
    parser.add_argument("--grain", type=float, default=3.0, help="noise sigma, grey levels")
    parser.add_argument("--margins", default="1,1.5,2,3,4")
    parser.add_argument("--default-model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--clip", type=Path, default=None, help="a CLIP bundle to use")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.images.is_dir():
        print(f"skipped: no photos at {args.images} (the Flickr8k-1k set is not shipped)")
        return 0
    photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    photos = photos[: args.limit]
    variants: dict[str, Callable[[Path, Preprocessing], np.ndarray]] = {"before": before_issue_14}
    for margin in args.margins.split(","):
        variants[f"margin={margin}"] = with_margin(float(margin))
    work = Path(tempfile.mkdtemp(prefix="parity-"))
    try:
        large = (
            make_large_set(photos[: args.large], work, args.upscale, args.grain)
            if args.large
            else []
        )
        models: dict[str, tuple[Path, str]] = {}
        if (args.default_model / "config.json").is_file():
            models["default"] = (args.default_model, "conse-lite0-minilm (real weights)")
        else:
            print(f"default model missing at {args.default_model}: build it first")
        models["clip"] = (
            (args.clip, f"{args.clip.name} (given)") if args.clip else random_vit_b32_bundle(work)
        )
        print(
            f"draft margin default: {DRAFT_MARGIN}; photos: {len(photos)} Flickr8k-1k, "
            f"{len(large)} upscaled x{args.upscale} + grain sigma {args.grain}"
        )
        for key, (bundle, label) in models.items():
            encoder = Encoder(bundle, threads=args.threads)
            pre = encoder.config.preprocessing
            for set_name, paths in (("flickr", photos), ("large", large)):
                if not paths:
                    continue
                started = time.perf_counter()
                report = cosine_report(encoder, paths, variants)
                print(
                    f"\n[{key}] {label}, {pre.size} px {pre.interpolation}; set {set_name} "
                    f"({len(paths)} photos; {time.perf_counter() - started:.0f} s)"
                )
                for name in variants:
                    r = report[name]
                    print(
                        f"  {name:<11} worst cosine {r['worst']:.5f}  mean {r['mean']:.6f}  "
                        f"inputs differing from reference: {r['differing']}"
                    )
                print(f"  unrelated photos: mean cosine {report['unrelated']:.4f}")
            if key == "default":
                margins = sorted({float(m) for m in args.margins.split(",")} | {DRAFT_MARGIN})
                for set_name, paths in (("flickr", photos), ("large", large)):
                    if paths:
                        t = decode_times(paths, pre, margins)
                        print(
                            f"decode+preprocess ms/photo, set {set_name}: "
                            + ", ".join(
                                f"{name} {ms:.1f} ({t['full'] / ms:.2f}x)" for name, ms in t.items()
                            )
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
