"""A set of named files (chosen together, a folder, or a zip) turned into labelled images, on any platform.

Labels come from a labels.csv (filename,label; file names relative to the folder holding labels.csv), or else
from the folder each image sits in (one folder per label).
"""

from __future__ import annotations

import io
import posixpath
import zipfile

from py_shared.data.examples import DataError
from py_shared.data.images import LABELS_FILE, parse_labels_csv

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


def unzip(data: bytes, name: str) -> dict[str, bytes]:
    """The files in a zip by their path inside it (folders, macOS resource forks and hidden files left out)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
                and "__MACOSX" not in info.filename
                and not posixpath.basename(info.filename).startswith(".")
            }
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{name}: not a readable zip file ({e})") from None


def expand_zips(files: dict[str, bytes]) -> dict[str, bytes]:
    """Replace each .zip among the files by its contents."""
    out: dict[str, bytes] = {}
    for name, data in files.items():
        out.update(unzip(data, name) if name.lower().endswith(".zip") else {name: data})
    return out


def image_files(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(every file, zips expanded; the images among them); DataError when there is no image."""
    files = expand_zips(files)
    images = {path: data for path, data in files.items() if path.lower().endswith(IMAGE_SUFFIXES)}
    if not images:
        raise DataError("no image files (PNG, JPEG, GIF, BMP, WebP) were found")
    return files, images


def labelled_images(files: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """(file name, label, encoded image) for every image, labelled by labels.csv or by its folder."""
    files, images = image_files(files)
    label_files = sorted((p for p in files if posixpath.basename(p) == LABELS_FILE), key=len)
    if label_files:
        base = posixpath.dirname(label_files[0])
        labels = parse_labels_csv(files[label_files[0]].decode("utf-8", errors="replace"), label_files[0])
        by_basename = {posixpath.basename(p): p for p in images}
        items, missing = [], []
        for name, label in labels.items():
            path = posixpath.join(base, name) if base else name
            found = path if path in images else by_basename.get(posixpath.basename(name))
            if found is None:
                missing.append(name)
            else:
                items.append((name, label, images[found]))
        if missing:
            raise DataError(f"{LABELS_FILE} names {len(missing)} image(s) that are not there, e.g. {missing[0]}")
        return items
    unlabelled = [p for p in images if not posixpath.dirname(p)]
    if unlabelled:
        raise DataError(f"no {LABELS_FILE}, and {unlabelled[0]} is not in a folder named after its label")
    return [(path, posixpath.basename(posixpath.dirname(path)), data) for path, data in sorted(images.items())]
