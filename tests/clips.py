"""Scripted face clips: FER2013 faces upscaled onto a larger canvas, in a known emotion timeline.

Built at test time into a temporary folder and never committed (FER2013 is research data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Segment:
    emotion: str
    seconds: float


def write_clip(fer_split: Path, timeline: list[Segment], out: Path, fps: float = 5.0, seed: int = 7,
               size: tuple[int, int] = (640, 480), face_px: int = 192) -> list[tuple[float, str]]:
    """Writes numbered PNG frames to ``out``; returns (t, true emotion) per frame, t = index / fps."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    truth: list[tuple[float, str]] = []
    index = 0
    w, h = size
    for seg in timeline:
        files = sorted((fer_split / seg.emotion).glob("*.jpg"))
        picks = rng.choice(len(files), size=int(round(seg.seconds * fps)), replace=len(files) < seg.seconds * fps)
        for k in picks:
            face = cv2.imread(str(files[k]), cv2.IMREAD_GRAYSCALE)
            face = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
            canvas = np.full((h, w), 110, np.uint8)
            jx, jy = rng.integers(-20, 21, size=2)
            x0, y0 = (w - face_px) // 2 + jx, (h - face_px) // 2 + jy
            canvas[y0 : y0 + face_px, x0 : x0 + face_px] = face
            cv2.imwrite(str(out / f"frame_{index:05d}.png"), cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
            truth.append((index / fps, seg.emotion))
            index += 1
    return truth
