"""Shared fixtures: where the data beside the repo lives, and scripted face clips made from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MOODBOX_SHARED", ROOT.parent / "shared"))
FER = SHARED / "data" / "fer2013"
CLIP = ROOT / "samples" / "short_hamilton_clip.mp4"  # committed: public domain


@pytest.fixture(scope="session")
def fer_root() -> Path:
    if not (FER / "val").is_dir():
        pytest.skip(f"FER2013 not found at {FER} (set MOODBOX_SHARED to the folder holding data/fer2013)")
    return FER


@pytest.fixture(scope="session")
def hamilton_clip() -> Path:
    assert CLIP.is_file(), f"{CLIP} is missing from the checkout"
    return CLIP


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> Path:
    """scikit-image's astronaut (Eileen Collins, smiling), saved as a file the CLI can read."""
    import cv2
    from skimage import data

    path = tmp_path_factory.mktemp("stills") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def face_patch(astronaut_png):
    """The astronaut's face with a margin, 240x240 grey: a head to move about synthetic frames (the tracker
    and pipeline tests)."""
    import cv2

    from moodbox.vision.faces import FaceDetector, to_gray

    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x, y, w, h = face.box
    m = w // 2
    return cv2.resize(gray[y - m : y + h + m, x - m : x + w + m], (240, 240), interpolation=cv2.INTER_CUBIC)
