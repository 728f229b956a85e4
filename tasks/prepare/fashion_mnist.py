"""Fashion-MNIST: Zalando's 60,000 training and 10,000 test images (28x28 grey) from Debian's package, as PNG zips."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from py_cli.image_zip import write_image_zip
from tasks.prepare.output import Manifest
from tasks.sources import FASHION_MNIST

ARTEFACT = FASHION_MNIST
LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
FOLDER = "./usr/share/datasets/fashion-mnist/"


def _idx(tar: tarfile.TarFile, name: str) -> np.ndarray:
    member = tar.extractfile(FOLDER + name)
    assert member is not None, name
    data = gzip.decompress(member.read())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def prepare(source: Path, dest: Path) -> Manifest:
    files = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(source)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(files)) as tar:
        for split, prefix in [("train", "train"), ("test", "t10k")]:
            pixels, labels = _idx(tar, f"{prefix}-images-idx3-ubyte.gz"), _idx(tar, f"{prefix}-labels-idx1-ubyte.gz")
            images = (
                (f"{i:05d}.png", LABELS[y], Image.fromarray(p, "L"))
                for i, (p, y) in enumerate(zip(pixels, labels, strict=True))
            )
            write_image_zip(dest / f"fashion_mnist_{split}.zip", images)
    return Manifest(
        "fashion_mnist_train.zip",
        "application/zip",
        "60,000 clothing images, 28x28 grey PNGs, with labels.csv (10,000 more in fashion_mnist_test.zip)",
        "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Zalando Research)",
        "MIT",
    )
