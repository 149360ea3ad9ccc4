"""Face detection with OpenCV's Haar cascade: full scans, and exact searches of parts of a frame.

The tracker that decides which to run is in :mod:`moodbox.vision.tracking`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodbox.config import DetectionConfig

log = logging.getLogger(__name__)

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Face:
    """A face box in full-resolution frame pixels: (x, y, width, height)."""

    box: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class Scan:
    """What one search found: the grouped faces (largest first) and the cascade's raw hits, (N, 4) boxes in
    frame pixels."""

    faces: list[Face]
    hits: np.ndarray


def use_threads(n: int) -> None:
    """OpenCV's worker threads for the whole process. Its pool busy-waits after each parallel call, so on
    a box that looks at small frames ten times a second more threads cost more CPU than they save."""
    cv2.setNumThreads(max(1, n))


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class FaceDetector:
    def __init__(self, cfg: DetectionConfig | None = None, cascade: Path = CASCADE) -> None:
        self.settings = cfg or DetectionConfig()
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
            found: np.ndarray = self._cascade.detectMultiScale(  # type: ignore[assignment]
                crop, scaleFactor=2.0, minNeighbors=0, minSize=(win * up, win * up), maxSize=(win * up, win * up)
            )
            if not len(found):
                continue
            side = int(round(win * float(sc)))
            # back to frame pixels as OpenCV maps them (float32 position times the float32 scale, rounded)
            px = (found[:, 0].astype(np.int64) // up + jx0).astype(np.float32)
            py = (found[:, 1].astype(np.int64) // up + jy0).astype(np.float32)
            hx, hy = np.rint(px * sc).astype(np.int64), np.rint(py * sc).astype(np.int64)
            keep = (hx >= x) & (hy >= y) & (hx + side <= x + w) & (hy + side <= y + h)
            hits += [(int(a), int(b), side, side) for a, b in zip(hx[keep], hy[keep])]
        return hits

    def sides(self, min_side: int, max_side: int) -> list[int]:
        """The window sides (frame pixels at detect_width 1:1) a scan tries between the two bounds."""
        return [int(round(self._window * float(sc))) for sc in self._scales(min_side, max_side)]

    def _group(self, hits: list[tuple[int, int, int, int]] | np.ndarray, factor: float) -> Scan:
        """Raw hits grouped as detectMultiScale groups them (groupRectangles, eps 0.2), both mapped back
        to frame pixels."""
        if len(hits) == 0:
            return Scan([], np.zeros((0, 4), np.int32))
        grouped, _ = cv2.groupRectangles([[int(v) for v in r] for r in hits], self.settings.min_neighbors, 0.2)
        raw = np.asarray(hits, np.float64).reshape(-1, 4)
        if factor != 1.0:
            raw = np.rint(raw / factor)
        faces = [
            Face((int(round(fx / factor)), int(round(fy / factor)), int(round(fw / factor)), int(round(fh / factor))))
            for (fx, fy, fw, fh) in (grouped if len(grouped) else [])
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return Scan(faces, raw.astype(np.int32))

    def search(self, gray: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int) -> Scan:
        """Faces inside ``region`` between ``min_side`` and ``max_side`` pixels, and the raw hits they
        were grouped from: a small, cheap search around where a face just was or where the picture
        changed. Its raw hits are the ones a full scan makes there (:meth:`raw_hits`) and they are
        grouped as detectMultiScale groups them, so a box is the full scan's box whenever the face's raw
        hits all fall in the region and the size range."""
        if min_side <= 0 or min(region[2], region[3]) < min_side:
            return Scan([], np.zeros((0, 4), np.int32))
        image, factor = self._prepare(gray)
        x, y, w, h = region
        sx, sy = int(x * factor), int(y * factor)
        scaled = (sx, sy, int(np.ceil((x + w) * factor)) - sx, int(np.ceil((y + h) * factor)) - sy)
        hits = self.raw_hits(image, scaled, max(1, int(round(min_side * factor))), int(round(max_side * factor)))
        return self._group(hits, factor)

    def detect_region(self, gray: np.ndarray, region: tuple[int, int, int, int], min_side: int, max_side: int) -> list[Face]:
        """The faces of :meth:`search`."""
        return self.search(gray, region, min_side, max_side).faces

    def scan(self, gray: np.ndarray) -> Scan:
        """A full scan of the frame: the same faces as detectMultiScale (which groups its raw hits with
        groupRectangles exactly so), plus the raw hits, which tell the tracker where and at which sizes
        to look for each face next."""
        s = self.settings
        small, factor = self._prepare(gray)
        min_side = max(12, int(round(s.min_face * factor)))
        # One scale a call: detectMultiScale keeps a buffer for every scale it runs at once (4-6 MB for a
        # 640x480 frame, held for the process's life); one at a time it needs the largest one's. The same
        # scales (the size bounds pick exactly one), the same hits, about 2 % more time.
        found = []
        for side in self.sides(min_side, min(small.shape[:2])):
            hits = self._cascade.detectMultiScale(
                small, scaleFactor=s.scale_factor, minNeighbors=0, minSize=(side, side), maxSize=(side, side)
            )
            if len(hits):
                found.append(hits)
        return self._group(np.concatenate(found) if found else [], factor)

    def detect(self, gray: np.ndarray) -> list[Face]:
        """Faces in a grey frame, largest first, boxes in the frame's own pixels."""
        return self.scan(gray).faces


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def clusters(hits: np.ndarray, eps: float = 0.2) -> np.ndarray:
    """Labels of the classes OpenCV's groupRectangles partitions raw hits into (its SimilarRects rule,
    joined transitively), so the hits that make each grouped face are known."""
    n = len(hits)
    if n == 0:
        return np.full(0, -1, np.int32)
    x, y, w, h = (hits[:, i].astype(np.float64) for i in range(4))
    d = eps * (np.minimum.outer(w, w) + np.minimum.outer(h, h)) * 0.5
    sim = (
        (np.abs(x[:, None] - x) <= d)
        & (np.abs(y[:, None] - y) <= d)
        & (np.abs((x + w)[:, None] - (x + w)) <= d)
        & (np.abs((y + h)[:, None] - (y + h)) <= d)
    )
    # Connected components of the similarity graph: every hit takes the smallest index it is linked to,
    # until nothing changes (a few rounds: the chains are short); numbered in order of their first hit,
    # as a scan from the first hit on numbers them.
    comp = np.arange(n)
    while True:
        nxt = np.where(sim, comp[None, :], n).min(axis=1)
        nxt = np.minimum(nxt, comp)
        nxt = nxt[nxt]  # jump along the chain
        if np.array_equal(nxt, comp):
            break
        comp = nxt
    _, labels = np.unique(comp, return_inverse=True)
    return labels.astype(np.int32)


def hits_of(face: Face, hits: np.ndarray) -> np.ndarray:
    """The raw hits grouped into ``face``: the class whose mean box overlaps it best."""
    if len(hits) == 0:
        return hits
    labels = clusters(hits)
    best, best_iou = -1, 0.0
    for k in range(int(labels.max()) + 1):
        mean = hits[labels == k].mean(axis=0)
        x, y, w, h = (int(round(v)) for v in mean)
        o = iou(face.box, (x, y, w, h))
        if o > best_iou:
            best, best_iou = k, o
    return hits[labels == best] if best >= 0 else hits[:0]
