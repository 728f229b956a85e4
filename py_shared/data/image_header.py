"""An image's width, height and colour read from its file header, without decoding it (pure Python, so the task
form can profile a sample folder on any platform). PNG, JPEG, GIF and BMP; None for anything else. Only PNG and
JPEG say whether an image is grey; GIF and BMP count as colour."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# JPEG start-of-frame markers: C0-CF except C4 (Huffman tables), C8 (reserved) and CC (arithmetic coding)
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class ImageHeader:
    """What a header says: the size in pixels, and 1 channel for grey images, 3 for colour ones."""

    width: int
    height: int
    channels: int


def read_header(data: bytes) -> ImageHeader | None:
    """The header of a PNG, JPEG, GIF or BMP file; None when the format is another or the header is cut short."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return ImageHeader(width, height, 1 if data[25] in (0, 4) else 3)  # colour types 0, 4: grey
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return ImageHeader(width, height, 3)
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return ImageHeader(width, abs(height), 3)  # rows stored bottom-up have a negative height
    except (struct.error, IndexError):
        return None
    return None


def _jpeg(data: bytes) -> ImageHeader | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # padding before a marker
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return ImageHeader(width, height, 1 if data[at + 9] == 1 else 3)
        at += 2 + length
    return None
