"""Where the picture changed: the tracker's cheap way to know which parts of a frame need looking at.

The cascade's answer for a window depends only on its pixels, and nobody comes into view without
changing them. So the map keeps, per 8x8 block, the mean grey level of the last frame analysed and the
one last *accounted for* (searched, or belonging to someone tracked); the difference says where to look."""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]

BLOCK = 8  # pixels per side of the blocks whose mean grey level tells where the picture changed


def cells(box: Box) -> tuple[slice, slice]:
    """The rows and columns of blocks that a pixel box (x, y, width, height) touches."""
    x, y, w, h = box
    return slice(y // BLOCK, -(-(y + h) // BLOCK)), slice(x // BLOCK, -(-(x + w) // BLOCK))


def clip_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Box:
    """(x, y, width, height) of the part of a corner box inside a w x h frame."""
    a, b = max(0, int(x0)), max(0, int(y0))
    return (a, b, max(0, min(w, int(np.ceil(x1))) - a), max(0, min(h, int(np.ceil(y1))) - b))


class ChangeMap:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._now: np.ndarray | None = None  # block means of the frame analysed last (or being analysed)
        self._ref: np.ndarray | None = None  # block means as last accounted for

    def look(self, gray: np.ndarray, still_threshold: float) -> bool:
        """Measure a frame; True when nothing moved since the last frame analysed (it needs no analysis).
        Judged per block, not on the frame's average: a face that shifts two pixels changes a few blocks
        clearly and the frame's average hardly at all."""
        h, w = gray.shape[:2]
        now = cv2.resize(gray, (max(1, w // BLOCK), max(1, h // BLOCK)), interpolation=cv2.INTER_AREA).astype(np.int16)
        if (
            self._now is not None
            and self._now.shape == now.shape
            and still_threshold > 0
            and int(np.max(np.abs(now - self._now))) <= still_threshold
        ):
            return True
        self._now = now
        return False

    @property
    def known(self) -> bool:
        """Something has been accounted for at this frame size (else only a full scan can say what is there)."""
        return self._ref is not None and self._now is not None and self._ref.shape == self._now.shape

    def account_all(self) -> None:
        """The whole frame has been looked at (a full scan)."""
        assert self._now is not None
        self._ref = self._now.copy()

    def account(self, box: Box) -> None:
        """The picture in ``box`` has been looked at (or belongs to someone tracked): change there is old."""
        assert self._ref is not None and self._now is not None
        rows, cols = cells(box)
        self._ref[rows, cols] = self._now[rows, cols]

    def changed(self, threshold: float) -> np.ndarray:
        """Blocks whose mean grey level moved by more than ``threshold`` since they were accounted for."""
        assert self._ref is not None and self._now is not None
        return np.abs(self._now - self._ref) > threshold


def changed_parts(changed: np.ndarray, w: int, h: int, min_face: int) -> list[Box]:
    """Boxes to search for newcomers: each patch of changed blocks grown by its own size (at least the
    smallest face), so a face whose window holds the change fits inside; overlapping boxes merged."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    boxes: list[list[int]] = []
    for bx, by, bw, bh, _ in stats[1:n]:
        px, py, pw, ph = bx * BLOCK, by * BLOCK, bw * BLOCK, bh * BLOCK
        g = max(min_face, max(pw, ph))
        x, y, cw, ch = clip_box(px - g, py - g, px + pw + g, py + ph + g, w, h)
        boxes.append([x, y, x + cw, y + ch])
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    boxes.pop(j)
                    merged = True
                    break
            if merged:
                break
    return [(a, b, c - a, d - b) for a, b, c, d in boxes]
