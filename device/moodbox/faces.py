"""Face detection with OpenCV's Haar cascade, run on a downscaled grey frame for speed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
# A search for large faces scans the whole frame when its first (largest) shrunk copy is at most this many
# pixels: about 200x200, a millisecond or two of cascade work.
_WHOLE_FRAME_PIXELS = 40_000


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
    detect_width: int = 0  # frames wider than this are shrunk to it before detection (0: never)
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
        self._window = int(self._cascade.getOriginalWindowSize()[0])  # the cascade's smallest face, 24 px

    def detect_region(self, gray: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int) -> list[Face]:
        """Faces inside ``region`` between ``min_side`` and ``max_side`` pixels: a small, cheap search around
        where a face just was.

        When the smallest size sought is large, the whole frame is searched at those sizes only: OpenCV
        then shrinks the frame to exactly the sizes a full scan uses, so the box is the one a full scan
        would return (a cropped region is shrunk on a slightly different pixel grid, and an ambiguous face
        can read as another emotion from a box a pixel or two off), and it is still cheap because only
        those few heavily shrunk copies are scanned. Small faces are searched for in the cropped region."""
        x, y, w, h = region
        H, W = gray.shape[:2]
        if min_side <= 0 or min(w, h) < min_side:
            return []
        whole = W * H * (self._window / float(min_side)) ** 2 <= _WHOLE_FRAME_PIXELS
        image = gray if whole else gray[y : y + h, x : x + w]
        if self.settings.equalize:
            image = cv2.equalizeHist(image)
        found = self._cascade.detectMultiScale(
            image, scaleFactor=self.settings.scale_factor, minNeighbors=self.settings.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side),
        )
        boxes = found if len(found) else []
        if whole:
            return [
                Face((int(fx), int(fy), int(fw), int(fh))) for (fx, fy, fw, fh) in boxes
                if x <= fx + fw / 2 < x + w and y <= fy + fh / 2 < y + h
            ]
        return [Face((int(fx) + x, int(fy) + y, int(fw), int(fh))) for (fx, fy, fw, fh) in boxes]

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
    rescan_s: float = 0.5  # while faces are tracked, a full-frame scan at least this often finds newcomers ...
    change_threshold: float = 4.0  # ... if an 8x8 block outside them changed its mean grey level by more than this
    full_scan_s: float = 5.0  # a full scan at least this often whatever changed
    idle_after_s: float = 5.0  # nobody seen for this long: the room is empty ...
    idle_scan_s: float = 0.5  # ... and a full scan this often is enough
    still_threshold: float = 2.0  # no 8x8 block's mean grey level changed by more than this: nothing moved
    roi_margin: float = 0.5  # a tracked face is searched for in its box grown by this much of its size


@dataclass(frozen=True)
class Detection:
    faces: list[Face]
    kind: str  # "full" | "roi" | "still" | "idle"


# A tracked face is looked for at these fractions of its last size. Wider than a face grows or shrinks
# between two frames, because the cascade's raw hits for one face span about this range and are averaged
# into its box: cutting some off would move the box away from the one a full scan returns.
_SIZE_RANGE = (0.65, 1.5)
_BLOCK = 8  # pixels per side of the blocks whose change decides whether a frame moved


class FaceTracker:
    """Makes Haar detection cheap without changing what it finds.

    A full-frame scan finds faces; in the frames after it, each face is searched for at its own size near
    where it was (which returns the box a full scan would, see :meth:`FaceDetector.detect_region`). The
    full scan is repeated every ``rescan_s`` to find newcomers, but only if the picture changed somewhere
    outside the tracked faces since the last one (the cascade's answer for a window depends only on its
    pixels, and nobody can walk in without changing them), and at least every ``full_scan_s``. A face
    that is lost triggers a full scan at once, a frame in which nothing moved is not looked at, and an
    empty room is scanned only every ``idle_scan_s``."""

    def __init__(self, detector: FaceDetector, settings: TrackerSettings | None = None) -> None:
        self.detector = detector
        self.s = settings or TrackerSettings()
        self.reset()

    def reset(self) -> None:
        self._faces: list[Face] = []
        self._blocks: np.ndarray | None = None  # block means of the last frame analysed
        self._scanned: np.ndarray | None = None  # block means at the last full scan
        self._last_full = -1e9
        self._last_seen: float | None = None

    def _still(self, blocks: np.ndarray) -> bool:
        """Nothing moved since the last frame analysed. Judged per block, not on the frame's average: a
        face that shifts two pixels changes a few blocks clearly and the frame's average hardly at all."""
        if self._blocks is None or self._blocks.shape != blocks.shape or self.s.still_threshold <= 0:
            return False
        return int(np.max(np.abs(blocks - self._blocks))) <= self.s.still_threshold

    def _changed_elsewhere(self, blocks: np.ndarray, regions: list[tuple[int, int, int, int]]) -> bool:
        """Whether any block outside ``regions`` (the tracked faces' surroundings) changed since the last
        full scan."""
        if self.s.change_threshold <= 0 or self._scanned is None or self._scanned.shape != blocks.shape:
            return True
        changed = np.abs(blocks - self._scanned) > self.s.change_threshold
        for x, y, w, h in regions:
            changed[y // _BLOCK : -(-(y + h) // _BLOCK), x // _BLOCK : -(-(x + w) // _BLOCK)] = False
        return bool(changed.any())

    def _full(self, gray: np.ndarray, t: float, blocks: np.ndarray) -> Detection:
        self._faces = self.detector.detect(gray)
        self._last_full = t
        self._scanned = blocks
        if self._faces:
            self._last_seen = t
        return Detection(self._faces, "full")

    def detect(self, gray: np.ndarray, t: float) -> Detection:
        h, w = gray.shape[:2]
        blocks = cv2.resize(gray, (max(1, w // _BLOCK), max(1, h // _BLOCK)), interpolation=cv2.INTER_AREA).astype(np.int16)
        if self._still(blocks):
            return Detection(self._faces, "still")
        self._blocks = blocks
        if self._last_seen is None:
            self._last_seen = t  # the first frame: nobody has been missed yet
        if not self._faces:
            idle = t - self._last_seen >= self.s.idle_after_s
            if idle and t - self._last_full < self.s.idle_scan_s:
                return Detection([], "idle")
            return self._full(gray, t, blocks)
        if t - self._last_full >= self.s.full_scan_s:
            return self._full(gray, t, blocks)
        found: list[Face] = []
        regions: list[tuple[int, int, int, int]] = []
        for face in self._faces:
            x, y, fw, fh = face.box
            m = int(round(max(fw, fh) * self.s.roi_margin))
            x0, y0 = max(0, x - m), max(0, y - m)
            region = (x0, y0, min(w, x + fw + m) - x0, min(h, y + fh + m) - y0)
            regions.append(region)
            near = self.detector.detect_region(gray, region, max(self.detector.settings.min_face, int(fw * _SIZE_RANGE[0])), int(fw * _SIZE_RANGE[1]) + 1)
            if not near:
                return self._full(gray, t, blocks)  # lost it: look everywhere
            best = max(near, key=lambda f: iou(f.box, face.box))
            if all(iou(best.box, g.box) < 0.5 for g in found):
                found.append(best)
        if t - self._last_full >= self.s.rescan_s and self._changed_elsewhere(blocks, regions):
            return self._full(gray, t, blocks)
        found.sort(key=lambda f: f.area, reverse=True)
        self._faces = found
        self._last_seen = t
        return Detection(found, "roi")
