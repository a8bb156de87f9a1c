"""Safe decoding: orientation, odd modes, broken files, bomb guard, draft mode, EXIF metadata."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import photosearch.files.imaging as imaging
from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import decode_for_model, load_image, make_thumbnail, to_model_input
from photosearch.models.bundle import Preprocessing

ORIENTATION = 0x0112
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
MAKE, MODEL = 271, 272


def _two_tone(path: Path, size: tuple[int, int] = (60, 40)) -> Path:
    """Left half red, right half blue: rotation is visible in where the colours end up."""
    image = Image.new("RGB", size, (230, 20, 20))
    image.paste((20, 20, 230), (size[0] // 2, 0, size[0], size[1]))
    image.save(path, quality=95)
    return path


def test_exif_rotation_is_applied(tmp_path: Path):
    path = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (60, 40), (230, 20, 20))
    image.paste((20, 20, 230), (30, 0, 60, 40))
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 CW to display"
    image.save(path, exif=exif, quality=95)

    upright, info = load_image(path)
    assert upright.size == (40, 60)
    assert (info.width, info.height) == (40, 60)
    top = np.asarray(upright)[5, 20]
    bottom = np.asarray(upright)[55, 20]
    # stored left (red) becomes top after a clockwise quarter turn; right (blue) the bottom
    assert top[0] > 150 and top[2] < 100
    assert bottom[2] > 150 and bottom[0] < 100


def test_no_orientation_keeps_size(tmp_path: Path):
    image, info = load_image(_two_tone(tmp_path / "plain.jpg"))
    assert image.size == (60, 40)
    assert (info.width, info.height) == (60, 40)
    assert info.taken_at is None and info.camera is None


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("zero.jpg", b""),
        ("text.jpg", b"this is not a photo, it is a shopping list\n"),
        ("garbage.png", bytes(range(256)) * 8),
    ],
)
def test_not_an_image_raises_readable_reason(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnsupportedImage, match="not an image") as caught:
        load_image(path)
    assert str(caught.value)


def test_truncated_jpeg_raises(tmp_path: Path):
    full = _two_tone(tmp_path / "full.jpg", size=(400, 300))
    data = full.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnsupportedImage, match="corrupt or truncated"):
        load_image(path)


def test_corrupt_png_raises(tmp_path: Path):
    good = tmp_path / "good.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(good)
    data = bytearray(good.read_bytes())
    data[60:120] = b"\x00" * 60  # smash the image data chunk (CRC no longer matches)
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedImage) as caught:
        load_image(path)
    assert len(str(caught.value)) > 10


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(UnsupportedImage, match="disappeared"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(UnsupportedImage, match="directory"):
        load_image(tmp_path)


def _assert_rgb(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    assert image.mode == "RGB"
    assert image.size == size
    return np.asarray(image)


def test_16_bit_png(tmp_path: Path):
    path = tmp_path / "deep.png"
    array = np.full((20, 30), 40000, dtype=np.uint16)
    array[:, :15] = 10000
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    image, _ = load_image(path)
    pixels = _assert_rgb(image, (30, 20))
    assert pixels[0, 0, 0] < pixels[0, 29, 0]  # brightness order kept
    assert pixels[0, 29, 0] > 200


def test_cmyk_jpeg(tmp_path: Path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    image, _ = load_image(path)
    red, green, blue = _assert_rgb(image, (30, 20))[10, 15]
    assert red > 200 and green < 60 and blue < 60


def test_palette_png_with_transparency_flattens_on_white(tmp_path: Path):
    path = tmp_path / "palette.png"
    image = Image.new("P", (20, 20), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (10, 0, 20, 20))
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    decoded, _ = load_image(path)
    pixels = _assert_rgb(decoded, (20, 20))
    assert tuple(pixels[5, 5]) == (255, 255, 255)  # transparent -> white, not red
    assert tuple(pixels[5, 15]) == (0, 0, 255)


def test_animated_gif_gives_first_frame(tmp_path: Path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    image, _ = load_image(path)
    red, green, blue = _assert_rgb(image, (16, 16))[8, 8]
    assert red > 200 and green < 50 and blue < 50


def test_grayscale(tmp_path: Path):
    path = tmp_path / "grey.jpg"
    Image.new("L", (24, 12), 128).save(path)
    image, _ = load_image(path)
    pixels = _assert_rgb(image, (24, 12))
    assert abs(int(pixels[6, 12, 0]) - 128) < 4
    assert pixels[6, 12, 0] == pixels[6, 12, 1] == pixels[6, 12, 2]


def test_decompression_bomb_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100), (9, 9, 9)).save(path)
    monkeypatch.setattr(imaging, "MAX_PIXELS", 10_000)
    with pytest.raises(UnsupportedImage, match="safety limit"):
        load_image(path)


def test_pillow_bomb_warning_becomes_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100), (9, 9, 9)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # 20,000 px: over the warning level
    with pytest.raises(UnsupportedImage, match="bomb"):
        load_image(path)


def test_jpeg_draft_mode_decodes_at_reduced_scale(tmp_path: Path):
    path = tmp_path / "large.jpg"
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=80)

    image, info = load_image(path, min_size=224)
    assert image.size[0] < 2000 and image.size[1] < 1500
    assert min(image.size) >= 224
    assert (info.width, info.height) == (2000, 1500)  # the original size is reported

    full, _ = load_image(path)
    assert full.size == (2000, 1500)


def test_a_bundle_draft_margin_lets_a_small_photo_decode_at_half_scale(tmp_path: Path):
    """A 500 x 375 photo (Flickr's size) is decoded in full for a 160 px model by default
    (margin 2: 187 px < 320), at half scale when the bundle's margin is 1 (187 px >= 160),
    and never below the model's input size."""
    path = tmp_path / "flickr.jpg"
    noise = np.random.default_rng(1).integers(0, 255, (375, 500, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=90)
    default = Preprocessing(size=160)
    assert imaging.draft_size(default) == 160 * imaging.DRAFT_MARGIN
    assert load_image(path, min_size=imaging.draft_size(default))[0].size == (500, 375)
    own = Preprocessing(size=160, draft_margin=1)
    assert imaging.draft_size(own) == 160
    assert load_image(path, min_size=imaging.draft_size(own))[0].size == (250, 188)
    assert decode_for_model(path, own).pixels.shape == (3, 160, 160)
    tight = Preprocessing(size=200, draft_margin=1)  # 187 px would be under 200: full decode
    assert load_image(path, min_size=imaging.draft_size(tight))[0].size == (500, 375)


def test_exif_capture_time_and_camera(tmp_path: Path):
    path = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif[MAKE] = "Canon"
    exif[MODEL] = "Canon EOS 5D"
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "2021:07:14 09:30:05"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, exif=exif)
    _, info = load_image(path)
    assert info.taken_at == datetime(2021, 7, 14, 9, 30, 5)
    assert info.camera == "Canon EOS 5D"  # make not repeated


def test_camera_joins_make_and_model(tmp_path: Path):
    path = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif[MAKE] = "NIKON CORPORATION"
    exif[MODEL] = "D750"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, exif=exif)
    _, info = load_image(path)
    assert info.camera == "NIKON CORPORATION D750"


def test_bad_exif_date_is_ignored(tmp_path: Path):
    path = tmp_path / "baddate.jpg"
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "0000:00:00 00:00:00"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, exif=exif)
    _, info = load_image(path)
    assert info.taken_at is None


@pytest.mark.parametrize("mode", ["shortest", "squash"])
def test_model_input_shape_and_normalisation(tmp_path: Path, mode: str):
    pre = Preprocessing(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize_mode=mode)
    image = Image.new("RGB", (90, 30), (255, 0, 0))
    array = to_model_input(image, pre)
    assert array.shape == (3, 32, 32) and array.dtype == np.float32
    assert np.allclose(array[0], 1.0) and np.allclose(array[1], -1.0)


def test_decode_for_model_and_thumbnail(tmp_path: Path):
    path = _two_tone(tmp_path / "photo.jpg", size=(300, 200))
    decoded = decode_for_model(path, Preprocessing(size=32))
    assert decoded.pixels.shape == (3, 32, 32)
    assert (decoded.info.width, decoded.info.height) == (300, 200)
    thumb = make_thumbnail(path, 64)
    assert max(thumb.size) == 64 and thumb.mode == "RGB"


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [("CMYK", (0, 255, 255, 0), (255, 0, 0)), ("L", 128, (128, 128, 128))],
)
def test_draft_mode_with_other_jpeg_modes(tmp_path: Path, mode: str, colour, expected):
    path = tmp_path / "big.jpg"
    Image.new(mode, (1200, 900), colour).save(path)
    image, info = load_image(path, min_size=224)
    assert image.mode == "RGB" and image.size[0] < 1200
    assert (info.width, info.height) == (1200, 900)
    assert all(abs(a - b) < 6 for a, b in zip(image.getpixel((10, 10)), expected, strict=True))
