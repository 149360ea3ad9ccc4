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

    def detect_region(self, gray: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int,
                      window_px: int = 40) -> list[Face]:
        """Faces inside ``region`` between ``min_side`` and ``max_side`` pixels: a small, cheap search around
        where a face just was. The region is shrunk so the smallest face sought is ``window_px`` wide:
        a big face needs no more pixels than that to be found."""
        x, y, w, h = region
        roi = gray[y : y + h, x : x + w]
        if roi.size == 0 or min(roi.shape[:2]) < min_side:
            return []
        f = min(1.0, window_px / float(min_side))
        if f < 1.0:
            roi = cv2.resize(roi, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        if self.settings.equalize:
            roi = cv2.equalizeHist(roi)
        lo = max(12, int(round(min_side * f)))
        hi = max(lo + 1, int(round(max_side * f)))
        found = self._cascade.detectMultiScale(
            roi, scaleFactor=self.settings.scale_factor, minNeighbors=self.settings.min_neighbors,
            minSize=(lo, lo), maxSize=(hi, hi),
        )
        return [
            Face((int(round(fx / f)) + x, int(round(fy / f)) + y, int(round(fw / f)), int(round(fh / f))))
            for (fx, fy, fw, fh) in (found if len(found) else [])
        ]

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


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


@dataclass(frozen=True)
class TrackerSettings:
    rescan_s: float = 0.5  # while faces are tracked, a full-frame scan at least this often finds newcomers
    idle_after_s: float = 5.0  # nobody seen for this long: the room is empty ...
    idle_scan_s: float = 0.5  # ... and a full scan this often is enough
    still_threshold: float = 0.5  # mean grey-level change of a 32x24 thumbnail below which nothing moved
    roi_margin: float = 0.5  # a tracked face is searched for in its box grown by this much of its size


@dataclass(frozen=True)
class Detection:
    faces: list[Face]
    kind: str  # "full" | "roi" | "still" | "idle"


class FaceTracker:
    """Makes Haar detection cheap without changing what it finds: a full-frame scan now and then, a small
    search around each known face in between, nothing at all for a frame that has not changed, and few
    scans of an empty room. A tracked face that is lost triggers a full scan at once."""

    def __init__(self, detector: FaceDetector, settings: TrackerSettings | None = None) -> None:
        self.detector = detector
        self.s = settings or TrackerSettings()
        self._faces: list[Face] = []
        self._thumb: np.ndarray | None = None
        self._last_full = -1e9
        self._last_seen: float | None = None

    def reset(self) -> None:
        self._faces = []
        self._thumb = None
        self._last_full = -1e9
        self._last_seen = None

    def _still(self, gray: np.ndarray) -> tuple[bool, np.ndarray]:
        thumb = cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        if self._thumb is None or self.s.still_threshold <= 0:
            return False, thumb
        return float(np.mean(np.abs(thumb - self._thumb))) < self.s.still_threshold, thumb

    def _full(self, gray: np.ndarray, t: float, thumb: np.ndarray) -> Detection:
        self._faces = self.detector.detect(gray)
        self._last_full = t
        self._thumb = thumb
        if self._faces:
            self._last_seen = t
        return Detection(self._faces, "full")

    def detect(self, gray: np.ndarray, t: float) -> Detection:
        still, thumb = self._still(gray)
        if still:
            return Detection(self._faces, "still")
        if self._last_seen is None:
            self._last_seen = t  # the first frame: nobody has been missed yet
        if not self._faces:
            idle = t - self._last_seen >= self.s.idle_after_s
            if idle and t - self._last_full < self.s.idle_scan_s:
                return Detection([], "idle")
            return self._full(gray, t, thumb)
        if t - self._last_full >= self.s.rescan_s:
            return self._full(gray, t, thumb)
        H, W = gray.shape[:2]
        found: list[Face] = []
        for face in self._faces:
            x, y, w, h = face.box
            m = int(round(max(w, h) * self.s.roi_margin))
            x0, y0 = max(0, x - m), max(0, y - m)
            region = (x0, y0, min(W, x + w + m) - x0, min(H, y + h + m) - y0)
            near = self.detector.detect_region(gray, region, max(self.detector.settings.min_face, int(w * 0.7)), int(w * 1.45) + 1)
            if not near:
                return self._full(gray, t, thumb)  # lost it: look everywhere
            best = max(near, key=lambda f: iou(f.box, face.box))
            if all(iou(best.box, g.box) < 0.5 for g in found):
                found.append(best)
        found.sort(key=lambda f: f.area, reverse=True)
        self._faces = found
        self._thumb = thumb
        self._last_seen = t
        return Detection(found, "roi")
