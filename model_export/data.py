"""FER2013 loaders for the two forms people hold it in: the original CSV and image folders.

Labels are always mapped *by name* to :data:`LABELS` (the order of the original CSV and of most published
models), because alphabetical folder listings put neutral/sad/surprise in other places.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIZE = 48
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm"}

#: folder split name -> the CSV's Usage value
SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class DataError(ValueError):
    """A data set that cannot be read; the message names the file (and line) at fault."""


@dataclass(frozen=True)
class Dataset:
    """Grey faces and integer labels in :data:`LABELS` order."""

    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(LABELS))
        return {name: int(c) for name, c in zip(LABELS, counts)}


def load(path: str | Path, split: str = "train", cache_dir: str | Path | None = None) -> Dataset:
    """Load ``split`` from a ``fer2013.csv`` file, a folder holding ``<split>/<emotion>/``, or a folder
    that *is* a split (``<emotion>/`` directly inside)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if p.is_file():
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return load_csv(p, usages=(SPLITS[split],))
    folder = p / split if (p / split).is_dir() else p
    if cache_dir is not None:
        return _cached(folder, Path(cache_dir))
    return load_folder(folder)


def load_folder(folder: str | Path) -> Dataset:
    """Read ``folder/<emotion>/*.jpg``; an unknown class folder is an error, not silently skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not class_dirs:
        raise DataError(f"{root}: no class folders (expected {', '.join(LABELS)})")
    unknown = [d.name for d in class_dirs if d.name.lower() not in LABELS]
    if unknown:
        raise DataError(f"{root}: unknown class folder(s) {', '.join(unknown)}; expected names from {', '.join(LABELS)}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for d in class_dirs:
        label = LABELS.index(d.name.lower())
        for f in sorted(d.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise DataError(f"{f}: cannot be read as an image")
            if img.shape != (SIZE, SIZE):
                img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no images found in {', '.join(d.name for d in class_dirs)}")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), str(root))


def load_csv(path: str | Path, usages: tuple[str, ...] = ("Training",)) -> Dataset:
    """Read the original ``fer2013.csv`` (columns emotion, pixels, Usage), keeping rows of ``usages``."""
    p = Path(path)
    images: list[np.ndarray] = []
    labels: list[int] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{p}:1: missing column(s) {', '.join(sorted(missing))}")
        has_usage = "Usage" in (reader.fieldnames or [])
        for row in reader:
            line = reader.line_num
            if has_usage and row["Usage"] not in usages:
                continue
            try:
                label = int(row["emotion"])
            except (TypeError, ValueError):
                raise DataError(f"{p}:{line}: emotion {row['emotion']!r} is not an integer 0-6") from None
            if not 0 <= label < len(LABELS):
                raise DataError(f"{p}:{line}: emotion {label} is outside 0-6")
            try:
                pixels = np.asarray((row["pixels"] or "").split(), dtype=np.int64)
            except ValueError:
                raise DataError(f"{p}:{line}: pixels are not space-separated integers") from None
            if pixels.size != SIZE * SIZE:
                raise DataError(f"{p}:{line}: {pixels.size} pixels, expected {SIZE * SIZE}")
            if pixels.min() < 0 or pixels.max() > 255:
                raise DataError(f"{p}:{line}: pixel values outside 0-255")
            images.append(pixels.astype(np.uint8).reshape(SIZE, SIZE))
            labels.append(label)
    if not images:
        raise DataError(f"{p}: no rows with Usage in {', '.join(usages)}")
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), f"{p} [{'+'.join(usages)}]")


def _cached(folder: Path, cache_dir: Path) -> Dataset:
    """Decoding 28k JPEGs takes a while; keep an .npz keyed by the folder's path and file list."""
    listing = "\n".join(sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file()))
    key = hashlib.sha1(f"{folder.resolve()}\n{listing}".encode()).hexdigest()[:16]
    cache = cache_dir / f"{folder.name}-{key}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return Dataset(z["images"], z["labels"], str(folder))
    ds = load_folder(folder)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, images=ds.images, labels=ds.labels)
    return ds
