"""Face detection with OpenCV's Haar cascade, run on a downscaled grey frame for speed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Face:
    """A face box in full-resolution frame pixels: (x, y, width, height)."""

    box: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class DetectorSettings:
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 40  # smallest face side, in full-resolution pixels
    detect_width: int = 320  # frames wider than this are shrunk to it before detection
    equalize: bool = False  # histogram equalisation adds false positives on bright backgrounds


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class FaceDetector:
    def __init__(self, settings: DetectorSettings | None = None, cascade: Path = CASCADE) -> None:
        self.settings = settings or DetectorSettings()
        self._cascade = cv2.CascadeClassifier(str(cascade))
        if self._cascade.empty():
            raise RuntimeError(f"{cascade}: cannot load the Haar cascade (is opencv-python-headless 4.x installed?)")

    def detect(self, gray: np.ndarray) -> list[Face]:
        """Faces in a grey frame, largest first, boxes in the frame's own pixels."""
        s = self.settings
        h, w = gray.shape[:2]
        factor = min(1.0, s.detect_width / float(w)) if s.detect_width > 0 else 1.0
        small = gray if factor >= 1.0 else cv2.resize(gray, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        if s.equalize:
            small = cv2.equalizeHist(small)
        min_side = max(12, int(round(s.min_face * factor)))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors, minSize=(min_side, min_side)
        )
        faces = [
            Face(
                (
                    int(round(x / factor)),
                    int(round(y / factor)),
                    int(round(bw / factor)),
                    int(round(bh / factor)),
                )
            )
            for (x, y, bw, bh) in (found if len(found) else [])
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
