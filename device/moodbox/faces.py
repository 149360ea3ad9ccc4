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

    def _prepare(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """The image the cascade runs on (shrunk to detect_width, equalised if asked) and its scale."""
        s = self.settings
        h, w = gray.shape[:2]
        factor = min(1.0, s.detect_width / float(w)) if s.detect_width > 0 else 1.0
        image = gray if factor >= 1.0 else cv2.resize(gray, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        if s.equalize:
            image = cv2.equalizeHist(image)
        return image, factor

    def _scales(self, min_side: int, max_side: int) -> list[np.float32]:
        """The scale factors OpenCV's detectMultiScale tries for these face sizes, computed as it does (a
        double multiplied up from 1, stored as a float), so that the shrunk images are the same."""
        out: list[np.float32] = []
        factor = 1.0
        while (win := int(round(self._window * factor))) <= max_side:
            if win >= min_side:
                out.append(np.float32(factor))
            factor *= self.settings.scale_factor
        return out

    def raw_hits(
        self, image: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int
    ) -> list[tuple[int, int, int, int]]:
        """The cascade's raw hits (before grouping) whose windows lie in ``region``, at sizes between
        ``min_side`` and ``max_side``: exactly the ones a scan of the whole image returns there.

        OpenCV shrinks the whole image for each scale (INTER_LINEAR_EXACT) and slides the 24 px window
        over it, every pixel once the scale is 2 or more, every other pixel below. A cropped image would
        be shrunk on a different pixel grid and find slightly different faces, so this shrinks the whole
        image the same way (cheap) and runs the cascade only on the part of the shrunk copy that covers
        the region (the expensive part). OpenCV uses a step of 2 for a copy at scale 1, so a crop whose
        step must be 1 is doubled with nearest-neighbour and scanned at scale 2, which shrinks it back
        exactly. The crop starts on a row and column of the step's grid, so it tries the same windows."""
        H, W = image.shape[:2]
        x, y, w, h = region
        win = self._window
        hits: list[tuple[int, int, int, int]] = []
        for sc in self._scales(min_side, max_side):
            sw, sh = int(round(W / float(sc))), int(round(H / float(sc)))
            if sw <= win or sh <= win:
                break
            step = 1 if sc >= 2 else 2
            jx0, jy0 = int(x / sc), int(y / sc)
            jx0, jy0 = jx0 - jx0 % step, jy0 - jy0 % step
            jx1, jy1 = min(sw, int(np.ceil((x + w) / sc)) + 1), min(sh, int(np.ceil((y + h) / sc)) + 1)
            if jx1 - jx0 <= win or jy1 - jy0 <= win:
                continue
            small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR_EXACT)
            crop = small[jy0:jy1, jx0:jx1]
            up = 2 if step == 1 else 1  # how much the crop is enlarged before the scan
            if up > 1:
                crop = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_NEAREST)
            found = self._cascade.detectMultiScale(
                crop, scaleFactor=2.0, minNeighbors=0, minSize=(win * up, win * up), maxSize=(win * up, win * up)
            )
            side = int(round(win * float(sc)))
            for fx, fy, _, _ in found if len(found) else []:
                px, py = int(fx) // up + jx0, int(fy) // up + jy0
                hx, hy = int(np.rint(np.float32(px) * sc)), int(np.rint(np.float32(py) * sc))
                if hx >= x and hy >= y and hx + side <= x + w and hy + side <= y + h:
                    hits.append((hx, hy, side, side))
        return hits

    def detect_region(self, gray: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int) -> list[Face]:
        """Faces inside ``region`` between ``min_side`` and ``max_side`` pixels: a small, cheap search around
        where a face just was. Its raw hits are the ones a full scan makes there (:meth:`raw_hits`) and
        they are grouped as detectMultiScale groups them, so the box is the full scan's box whenever the
        face's raw hits all fall in the region and the size range."""
        if min_side <= 0 or min(region[2], region[3]) < min_side:
            return []
        image, factor = self._prepare(gray)
        x, y, w, h = region
        sx, sy = int(x * factor), int(y * factor)
        scaled = (sx, sy, int(np.ceil((x + w) * factor)) - sx, int(np.ceil((y + h) * factor)) - sy)
        hits = self.raw_hits(image, scaled, max(1, int(round(min_side * factor))), int(round(max_side * factor)))
        if not hits:
            return []
        grouped, _ = cv2.groupRectangles([list(r) for r in hits], self.settings.min_neighbors, 0.2)
        return [
            Face((int(round(fx / factor)), int(round(fy / factor)), int(round(fw / factor)), int(round(fh / factor))))
            for (fx, fy, fw, fh) in (grouped if len(grouped) else [])
        ]

    def detect(self, gray: np.ndarray) -> list[Face]:
        """Faces in a grey frame, largest first, boxes in the frame's own pixels."""
        s = self.settings
        small, factor = self._prepare(gray)
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
    that is lost triggers a full scan at once. If that does not find it, it becomes a ghost: Haar loses a
    turned or blurred face for a few frames and finds it again where it was, so for ``idle_after_s`` the
    ghost's surroundings are searched every frame like a tracked face's, and with nobody tracked a full
    scan is needed only when something changed outside them. A frame in which nothing moved is not looked
    at, and an empty room is scanned only every ``idle_scan_s``."""

    def __init__(self, detector: FaceDetector, settings: TrackerSettings | None = None) -> None:
        self.detector = detector
        self.s = settings or TrackerSettings()
        self.reset()

    def reset(self) -> None:
        self._faces: list[Face] = []
        self._ghosts: list[tuple[Face, float]] = []  # faces lost by the last full scans, and when
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

    def _region(self, face: Face, w: int, h: int) -> tuple[int, int, int, int]:
        x, y, fw, fh = face.box
        m = int(round(max(fw, fh) * self.s.roi_margin))
        x0, y0 = max(0, x - m), max(0, y - m)
        return (x0, y0, min(w, x + fw + m) - x0, min(h, y + fh + m) - y0)

    def _search(self, gray: np.ndarray, face: Face, region: tuple[int, int, int, int]) -> Face | None:
        fw = face.box[2]
        smallest = max(self.detector.settings.min_face, int(fw * _SIZE_RANGE[0]))
        near = self.detector.detect_region(gray, region, smallest, int(fw * _SIZE_RANGE[1]) + 1)
        return max(near, key=lambda f: iou(f.box, face.box)) if near else None

    def _full(self, gray: np.ndarray, t: float, blocks: np.ndarray) -> Detection:
        before = [(f, t) for f in self._faces] + self._ghosts
        self._faces = self.detector.detect(gray)
        self._last_full = t
        self._scanned = blocks
        if self._faces:
            self._last_seen = t
        self._ghosts = []
        # The faces this scan lost, newest first, unless one found covers them or they are too old; and only
        # as many as keep the searched area under the frame's (more searching would cost more than a full scan).
        h, w = gray.shape[:2]
        budget = h * w - sum(r[2] * r[3] for r in (self._region(f, w, h) for f in self._faces))
        for face, lost_at in sorted(before, key=lambda g: -g[1]):
            if t - lost_at >= self.s.idle_after_s or any(iou(face.box, g.box) >= 0.2 for g in self._faces + [g for g, _ in self._ghosts]):
                continue
            _, _, rw, rh = self._region(face, w, h)
            if rw * rh <= budget:
                budget -= rw * rh
                self._ghosts.append((face, lost_at))
        return Detection(self._faces, "full")

    def detect(self, gray: np.ndarray, t: float) -> Detection:
        h, w = gray.shape[:2]
        blocks = cv2.resize(gray, (max(1, w // _BLOCK), max(1, h // _BLOCK)), interpolation=cv2.INTER_AREA).astype(np.int16)
        if self._still(blocks):
            return Detection(self._faces, "still")
        self._blocks = blocks
        if self._last_seen is None:
            self._last_seen = t  # the first frame: nobody has been missed yet
        self._ghosts = [(g, lost_at) for g, lost_at in self._ghosts if t - lost_at < self.s.idle_after_s]
        if not self._faces and not self._ghosts:
            idle = t - self._last_seen >= self.s.idle_after_s
            if idle and t - self._last_full < self.s.idle_scan_s:
                return Detection([], "idle")
            return self._full(gray, t, blocks)
        if t - self._last_full >= self.s.full_scan_s:
            return self._full(gray, t, blocks)
        found: list[Face] = []
        regions: list[tuple[int, int, int, int]] = []
        for face in self._faces:
            region = self._region(face, w, h)
            regions.append(region)
            best = self._search(gray, face, region)
            if best is None:
                return self._full(gray, t, blocks)  # lost it: look everywhere
            if all(iou(best.box, g.box) < 0.5 for g in found):
                found.append(best)
        ghosts: list[tuple[Face, float]] = []
        for ghost, lost_at in self._ghosts:
            region = self._region(ghost, w, h)
            regions.append(region)
            best = self._search(gray, ghost, region)
            if best is None:
                ghosts.append((ghost, lost_at))
            elif all(iou(best.box, g.box) < 0.5 for g in found):
                found.append(best)
        if self._changed_elsewhere(blocks, regions) and (not found or t - self._last_full >= self.s.rescan_s):
            return self._full(gray, t, blocks)  # somebody may have come in (at once while nobody is tracked)
        self._ghosts = ghosts
        found.sort(key=lambda f: f.area, reverse=True)
        self._faces = found
        if found:
            self._last_seen = t
        return Detection(found, "roi")
