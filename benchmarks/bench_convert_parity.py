"""Parity of `photosearch models import CHECKPOINT` (the open_clip converter) with open_clip.

A real open_clip architecture with random weights (pretrained=None, seeded) is saved as a
safetensors checkpoint, imported through photosearch.models.importing (converter plugin, ONNX
export, manifest, validation), then compared with open_clip's own code on the same inputs:

- image tower: the same float32 pixel tensors into ``model.encode_image(normalize=True)`` and
  into the app's Encoder (ONNX Runtime): max abs diff and min cosine;
- text tower: COCO captions through ``open_clip.tokenize`` + ``encode_text(normalize=True)``
  and through the app's tokenizer + Encoder: max abs diff and min cosine;
- token ids on every caption (25,014 in captions_val2017.txt): open_clip's tokenizer (with its
  ftfy cleaning) against the app's, compared up to and including the end-of-text token (the
  padding after it differs by convention: open_clip pads with 0, Immich and the app with the
  end-of-text id; the causal mask and argmax pooling make the vector independent of it).

Needs the convert extra (open_clip_torch, torch, torchvision); run from the repository root:

    PYTHONPATH=.:plugins python benchmarks/bench_convert_parity.py [--arch ViT-B-32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the main checkout, or two levels up from a worktree under wt/
CAPTIONS = next(
    (
        base / "shared" / "data" / "coco-captions" / "captions_val2017.txt"
        for base in (ROOT.parent, ROOT.parent.parent)
        if (base / "shared" / "data" / "coco-captions").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "coco-captions" / "captions_val2017.txt",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=32, help="random pixel tensors")
    parser.add_argument(
        "--texts",
        type=int,
        default=1000,
        help="captions encoded by both text towers (token ids: all captions)",
    )
    parser.add_argument("--captions", type=Path, default=CAPTIONS)
    args = parser.parse_args()

    import open_clip
    import torch
    from safetensors.torch import save_file

    from photosearch.models.importing import import_model
    from photosearch.models.runtime import Encoder

    torch.manual_seed(0)
    model = open_clip.create_model(args.arch, pretrained=None).eval()
    captions = [
        line.strip()
        for line in args.captions.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(scratch) / f"{args.arch}-random.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
        started = time.perf_counter()
        bundle = import_model(
            checkpoint, Path(scratch) / "models", arch=args.arch, name=f"{args.arch}-parity"
        )
        convert_s = time.perf_counter() - started
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        encoder = Encoder(bundle, threads=2)
        print(
            f"{args.arch}, random weights: converted, validated and installed in "
            f"{convert_s:.0f} s; bundle {size / 1e6:.1f} MB"
        )

        image_size = encoder.config.preprocessing.size
        pixels = torch.randn(
            args.images, 3, image_size, image_size, generator=torch.Generator().manual_seed(1)
        )
        with torch.no_grad():
            reference = model.encode_image(pixels, normalize=True).numpy()
        ours = encoder.encode_images(pixels.numpy())
        _report("image tower", reference, ours)

        reference_ids = open_clip.tokenize(captions).numpy()
        end_id = int(reference_ids.max())
        equal, mismatches = 0, []
        for index, caption in enumerate(captions):
            ids = np.asarray(encoder.tokenize(caption))
            expected = reference_ids[index]
            stop = int(np.argmax(expected == end_id)) + 1
            if ids.shape[0] >= stop and np.array_equal(ids[:stop], expected[:stop]):
                equal += 1
            else:
                mismatches.append(caption)
        print(
            f"token ids: equal on {equal} of {len(captions)} COCO captions "
            f"(up to and including end-of-text)"
        )
        if mismatches:
            import ftfy

            by_ftfy = sum(ftfy.fix_text(c) != c for c in mismatches)
            print(
                f"  {len(mismatches)} differ; ftfy changes the text of {by_ftfy} of them; "
                f"first: {mismatches[:3]!r}"
            )

        subset = captions[: args.texts]
        with torch.no_grad():
            reference = model.encode_text(open_clip.tokenize(subset), normalize=True).numpy()
        ours = encoder.encode_texts(subset)
        _report(f"text tower ({len(subset)} captions)", reference, ours)


def _report(label: str, reference: np.ndarray, ours: np.ndarray) -> None:
    diff = float(np.abs(reference - ours).max())
    cosine = float((reference * ours).sum(axis=1).min())
    print(
        f"{label}: max abs diff {diff:.2e}, min cosine {cosine:.7f} "
        f"over {reference.shape[0]} vectors of {reference.shape[1]} dims"
    )


if __name__ == "__main__":
    main()
