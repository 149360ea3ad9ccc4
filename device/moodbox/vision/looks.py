"""The looks a face is scored with: the face, its mirror image, and for ambiguous faces tilted views, all
in plain numpy so that x86 and the Pi's ARM feed the network the same bytes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import numpy as np

from moodbox.vision.model import ModelMeta


@functools.lru_cache(maxsize=16)
def _tilt_taps(h: int, w: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel of a rotation about the centre samples its four neighbours, and their
    bilinear weights: (4, h*w) flat source indices and (4, h*w, 1) float32 weights.

    Built in float64 numpy and applied with plain numpy arithmetic, so the tilted views are the same bits on
    every CPU: ``cv2.warpAffine`` takes other SIMD paths on x86 and ARM and gave scores up to 0.007 apart."""
    a = np.deg2rad(angle)
    cos, sin = np.cos(a), np.sin(a)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # inverse of a counter-clockwise rotation by ``angle`` (as cv2.getRotationMatrix2D + warpAffine)
    sx = cos * (xx - cx) - sin * (yy - cy) + cx
    sy = sin * (xx - cx) + cos * (yy - cy) + cy
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0).ravel(), (sy - y0).ravel()

    def reflect(v: np.ndarray, n: int) -> np.ndarray:  # BORDER_REFLECT_101: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        period = 2 * (n - 1) if n > 1 else 1
        v = np.abs(v.astype(np.int64)) % period
        return np.where(v >= n, period - v, v)

    x0, y0 = x0.ravel(), y0.ravel()
    idx, wts = [], []
    for dy, dx, wt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        idx.append(reflect(y0 + dy, h) * w + reflect(x0 + dx, w))
        wts.append(wt)
    return np.stack(idx), np.stack(wts).astype(np.float32)[:, :, None]


def _tilt(batch: np.ndarray, angle: float) -> np.ndarray:
    """Rotate every image of an (N, h, w, c) batch about its centre by ``angle`` degrees
    (counter-clockwise), bilinear, mirroring the edge into the corners; the same bits on any CPU."""
    n, h, w, c = batch.shape
    idx, wts = _tilt_taps(h, w, float(angle))
    flat = batch.reshape(n, h * w, c).astype(np.float32, copy=False)
    out = flat[:, idx[0]] * wts[0]
    for k in (1, 2, 3):
        out = out + flat[:, idx[k]] * wts[k]
    return out.reshape(n, h, w, c).astype(batch.dtype, copy=False)


def score_views(predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """Probabilities for a batch of preprocessed faces (N, h, w, c) as the metadata asks: each face, its
    mirror image (``mirror_average``), and for ambiguous faces the tilted looks too (``tilted_views``).

    ``predict`` maps a batch to (N, classes) probabilities. The device and evaluate.py (for the int8 and
    the float model alike) both score through here, so the figures measured are the ones the device gets."""
    first = [batch] + ([np.ascontiguousarray(batch[:, :, ::-1])] if meta.mirror_average else [])
    probs: np.ndarray = cast(np.ndarray, sum(predict(v) for v in first)) / len(first)
    if not meta.tilt_deg or meta.tilt_below_margin <= 0.0 or probs.shape[-1] < 2:
        return probs
    top2 = np.sort(probs, axis=-1)[:, -2:]
    unsure = np.flatnonzero(top2[:, 1] - top2[:, 0] < meta.tilt_below_margin)
    if unsure.size == 0:
        return probs
    looks = [_tilt(v[unsure], angle) for angle in meta.tilt_deg for v in first]
    total = probs[unsure] * len(first) + cast(np.ndarray, sum(predict(v) for v in looks))
    probs = probs.copy()
    probs[unsure] = total / (len(first) + len(looks))
    return probs
