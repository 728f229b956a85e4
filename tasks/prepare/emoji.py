"""Emoji: Twitter's 32x32 colour emoji cut from the clean sprite sheet, labelled by Unicode category (CC-BY 4.0)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image

from py_cli.image_zip import write_image_zip
from tasks.prepare.output import Manifest
from tasks.sources import EMOJI

ARTEFACT = EMOJI
CELL, SIZE = 34, 32  # the sheet holds 32x32 images in 34x34 cells (one pixel of padding around each)


def category_label(category: str) -> str:
    return category.lower().replace(" & ", "-").replace(" ", "-")


def prepare(source: Path, dest: Path) -> Manifest:
    with tarfile.open(source) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile("package/" + name)
            assert member is not None, name
            return member.read()

        catalogue = json.loads(read("emoji.json"))
        sheet = Image.open(io.BytesIO(read("img/twitter/sheets-clean/32.png"))).convert("RGBA")
    emoji = [e for e in catalogue if e.get("has_img_twitter") and e["category"] != "Component"]

    def images():  # type: ignore[no-untyped-def]
        for e in sorted(emoji, key=lambda e: e["sort_order"]):
            x, y = e["sheet_x"] * CELL + 1, e["sheet_y"] * CELL + 1
            tile = Image.new("RGBA", (SIZE, SIZE), "white")
            tile.alpha_composite(sheet.crop((x, y, x + SIZE, y + SIZE)))
            yield f"{e['unified'].lower()}.png", category_label(e["category"]), tile.convert("RGB")

    count = write_image_zip(dest / "emoji.zip", images())
    return Manifest(
        "emoji.zip",
        "application/zip",
        f"{count} colour 32x32 emoji PNGs in 9 categories, with labels.csv",
        "npm emoji-datasource-twitter@16.0.0, img/twitter/sheets-clean/32.png + emoji.json (Twemoji graphics)",
        "Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    )
