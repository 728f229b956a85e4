"""Simple face: scikit-image's LFW subset, 100 faces and 100 non-faces (25x25 grey), as PNGs with labels.csv."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from py_cli.image_zip import write_image_zip
from tasks.prepare.output import Manifest
from tasks.sources import SIMPLE_FACE

ARTEFACT = SIMPLE_FACE


def prepare(source: Path, dest: Path) -> Manifest:
    array = np.load(io.BytesIO(zipfile.ZipFile(source).read("skimage/data/lfw_subset.npy")))
    pixels = np.round(array * 255).astype(np.uint8)  # (200, 25, 25) in [0, 1]: the first 100 are faces
    labels = ["face" if i < 100 else "non-face" for i in range(len(pixels))]
    images = ((f"{i:03d}.png", labels[i], Image.fromarray(p, "L")) for i, p in enumerate(pixels))
    count = write_image_zip(dest / "simple_face.zip", images)
    return Manifest(
        "simple_face.zip",
        "application/zip",
        f"{count} grey 25x25 PNGs, half faces, half not, with labels.csv",
        "PyPI scikit-image==0.26.0, skimage/data/lfw_subset.npy (Labeled Faces in the Wild)",
        "BSD-3-Clause (scikit-image); LFW images are public",
    )
