"""Sample data in the task form: image headers read without decoding, and what a sample fills in."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from py_shared.data.examples import DataError
from py_shared.data.image_header import ImageHeader, read_header
from py_shared.data.sample_profile import image_profile, text_profile
from tests.fixtures import digits_folder


def encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 90).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "channels"),
    [
        ("L", "PNG", 1),
        ("LA", "PNG", 1),
        ("RGB", "PNG", 3),
        ("RGBA", "PNG", 3),
        ("P", "PNG", 3),
        ("L", "JPEG", 1),
        ("RGB", "JPEG", 3),
        ("RGB", "GIF", 3),
        ("RGB", "BMP", 3),
    ],
)
def test_a_header_gives_the_size_and_colour_that_pillow_wrote(mode: str, fmt: str, channels: int) -> None:
    data = encoded(mode, (37, 21), fmt)
    assert read_header(data) == ImageHeader(37, 21, channels)
    assert Image.open(io.BytesIO(data)).size == (37, 21)


def test_a_jpeg_with_metadata_before_its_frame_is_read() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48)).save(out, "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 200, progressive=True)
    assert read_header(out.getvalue()) == ImageHeader(64, 48, 3)


def test_what_is_not_an_image_or_is_cut_short_has_no_header() -> None:
    png = encoded("L", (8, 8), "PNG")
    assert read_header(b"hello, world") is None and read_header(png[:20]) is None
    assert read_header(encoded("RGB", (8, 8), "JPEG")[:30]) is None and read_header(b"") is None


def test_a_folder_of_grey_digits_fills_in_size_channels_and_labels(tmp_path: Path) -> None:
    folder = digits_folder(tmp_path / "digits", per_digit=2, digits=3)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert image_profile(files) == {"width": "28", "height": "28", "channels": "1", "labels": "0, 1, 2"}


def test_a_zip_of_colour_images_in_label_folders_takes_the_most_common_size() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for k, label in enumerate(["dog", "cat", "dog", "10", "2"]):
            z.writestr(f"pets/{label}/{k}.jpg", encoded("RGB", (32, 24), "JPEG"))
        z.writestr("pets/cat/odd.png", encoded("L", (50, 50), "PNG"))
    profile = image_profile({"pets.zip": archive.getvalue()})
    assert profile == {"width": "32", "height": "24", "channels": "3", "labels": "2, 10, cat, dog"}


def test_images_without_labels_or_a_readable_size_are_refused() -> None:
    with pytest.raises(DataError, match="not in a folder named after its label"):
        image_profile({"a.png": encoded("L", (8, 8), "PNG")})
    with pytest.raises(DataError, match="size can be read"):
        image_profile({"x/a.webp": b"RIFF....WEBP"})


def test_a_text_gives_its_characters_newline_included() -> None:
    assert text_profile({"a.txt": b"to be,\nor not"}) == {"alphabet": "\n ,benort"}
    with pytest.raises(DataError, match="two distinct characters"):
        text_profile({"a.txt": b"aaaa"})
    with pytest.raises(DataError, match="gpt2-bpe"):
        text_profile({"a.txt": "".join(map(chr, range(0x4E00, 0x4F80))).encode()})
    with pytest.raises(DataError, match="not a UTF-8"):
        text_profile({"a.txt": b"\xff\xfe"})
