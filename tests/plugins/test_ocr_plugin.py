"""The built-in OCR plugin with the real RapidOCR models: words rendered in a known font are
read back, a photo without text stops at the gate, and a library finds the photo by its text
(the plugin discovered through its entry point, as the app finds it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

if (
    importlib.util.find_spec("rapidocr_onnxruntime") is None
    or importlib.util.find_spec("cv2") is None
):
    pytest.skip(
        "the ocr extra is not installed (scripts/setup.sh installs it)", allow_module_level=True
    )

from photosearch_ocr.extractor import RapidOcrExtractor

from photosearch.indexing.extractors import ENTRY_POINT_GROUP
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo


@pytest.fixture(scope="module")
def extractor() -> RapidOcrExtractor:
    return RapidOcrExtractor(threads=1)


def rendered_words(text: str, size: tuple[int, int] = (480, 200)) -> Image.Image:
    """Dark words on a pale sign over a darker backdrop, in Pillow's own font (no font files
    needed), large enough to read. Words are set a wide gap apart: the recogniser joins words
    whose gap is as narrow as this font's space ("HELLOWORLD")."""
    image = Image.new("RGB", size, (70, 90, 60))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 40, size[0] - 20, size[1] - 40), fill=(235, 230, 215))
    font = ImageFont.load_default(size=56)
    x = 40
    for word in text.split():
        draw.text((x, 65), word, fill=(20, 20, 30), font=font)
        x += int(draw.textlength(word, font=font)) + 36
    return image


def plain_photo() -> Image.Image:
    """No text: sky, ground and a blurred sun."""
    image = Image.new("RGB", (480, 320), (120, 160, 220))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 200, 480, 320), fill=(60, 120, 50))
    draw.ellipse((330, 40, 410, 120), fill=(250, 220, 120))
    return image.filter(ImageFilter.GaussianBlur(3))


def test_reads_rendered_words_back(extractor: RapidOcrExtractor):
    text = extractor.read_text(rendered_words("HELLO WORLD"))
    assert text.split() == ["HELLO", "WORLD"], text
    assert extractor.passed == 1


def test_the_gate_stops_a_photo_without_text(extractor: RapidOcrExtractor):
    gated, passed = extractor.gated, extractor.passed
    assert extractor.read_text(plain_photo()) == ""
    assert (extractor.gated, extractor.passed) == (gated + 1, passed)  # no full pass ran


def test_a_library_finds_a_photo_by_its_text(
    library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site = tmp_path / "site" / "ocr-1.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: ocr\nVersion: 1.0\n")
    (site / "entry_points.txt").write_text(  # what pyproject.toml registers
        f"[{ENTRY_POINT_GROUP}]\nrapidocr = photosearch_ocr.extractor:RapidOcrExtractor\n"
    )
    monkeypatch.syspath_prepend(str(site.parent))
    monkeypatch.delenv("PHOTOSEARCH_READ_TEXT")
    folder = tmp_path / "photos"
    folder.mkdir()
    rendered_words("OPEN 24 HOURS", size=(560, 200)).save(folder / "shop.png")
    make_photo(folder / "red.png", "red")
    library.add_folder(folder)
    library.index()
    report = library.text.read()
    assert (report.read, report.with_text, report.failed) == (2, 1, 0)
    results = library.search(SearchQuery(text="open hours", k=2))
    assert results[0].path == str(folder / "shop.png")
    status = library.text.status()
    assert status.with_text == 1 and status.pending == 0
    assert status.extractors[0].startswith("rapidocr@")
