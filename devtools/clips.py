"""Scripted face clips for the demo, the tests and the benchmark: FER2013 faces upscaled onto a room-like
canvas in a known emotion timeline. A developer tool (FER2013 is research data: the clips are built in
temporary folders and never committed or shipped)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Segment:
    emotion: str
    seconds: float


def room_background(size: tuple[int, int] = (640, 480), seed: int = 3) -> np.ndarray:
    """A still, textured grey room for scripted clips: a shaded wall, a window, a bookshelf full of
    spines, a picture, a sofa and a lamp. Haar's cost and its false alarms depend on texture, which a
    plain wall lacks; a real room's photo would carry faces or rights of its own."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    room = 150 - 40 * (xx / w) - 15 * (yy / h) + rng.normal(0, 3, (h, w))  # wall, lit from the left
    room[int(h * 0.72) :, :] = 95 + 10 * np.sin(xx[int(h * 0.72) :, :] / 7.0)  # floorboards
    room[40:200, 30:170] = 220  # window, with its frame
    room[115:125, 30:170] = room[40:200, 95:105] = 70
    x = 470
    for shelf_y in (60, 150, 240):  # bookshelf
        room[shelf_y + 80 : shelf_y + 88, 460:630] = 60
        x = 462
        while x < 625:
            bw = int(rng.integers(6, 16))
            room[shelf_y + int(rng.integers(10, 30)) : shelf_y + 80, x : x + bw] = rng.integers(30, 200)
            x += bw + 1
    room[70:150, 230:330] = rng.integers(40, 200, (8, 10)).repeat(10, 0).repeat(10, 1)  # a picture
    room[300:400, 20:220] = 70  # sofa
    room[270:310, 30:210] = 80
    room[250:260, 560:600] = 230  # lamp
    room[260:345, 578:582] = 50
    return np.clip(room, 0, 255).astype(np.uint8)


def write_clip(
    fer_split: Path,
    timeline: list[Segment],
    out: Path,
    fps: float = 5.0,
    seed: int = 7,
    size: tuple[int, int] = (640, 480),
    face_px: int = 192,
    hold_s: float = 0.0,
    background: np.ndarray | None = None,
    noise: float = 0.0,
) -> list[tuple[float, str]]:
    """Numbered PNG frames of FER faces in ``timeline`` order (or, when ``out`` ends in .mp4, a video);
    returns (t, true emotion) per frame. Each face is a new one unless ``hold_s`` > 0: then each face is
    held that long, drifting a few pixels per frame, as a listener in front of a camera would. The
    faces sit on a plain grey wall, or on ``background`` (grey, resized to ``size``: a room), with
    Gaussian sensor noise of ``noise`` grey levels added to every frame if asked."""
    rng = np.random.default_rng(seed)
    sensor = np.random.default_rng(seed + 1)  # its own stream: the same faces with noise or without
    video = None
    if out.suffix == ".mp4":
        out.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
        video = cv2.VideoWriter(str(out), fourcc, fps, size)
    else:
        out.mkdir(parents=True, exist_ok=True)
    truth: list[tuple[float, str]] = []
    index = 0
    w, h = size
    for seg in timeline:
        files = sorted((fer_split / seg.emotion).glob("*.jpg"))
        n = int(round(seg.seconds * fps))
        per_face = max(1, int(round(hold_s * fps)))
        count = -(-n // per_face)
        picks = rng.choice(len(files), size=count, replace=len(files) < count)
        jx = jy = 0
        for i in range(n):
            if i % per_face == 0:
                face = cv2.imread(str(files[picks[i // per_face]]), cv2.IMREAD_GRAYSCALE)
                face = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
                jx, jy = rng.integers(-20, 21, size=2)
            elif hold_s > 0:
                jx, jy = np.clip([jx, jy] + rng.integers(-2, 3, size=2), -20, 20)
            canvas: np.ndarray
            if background is None:
                canvas = np.full((h, w), 110, np.uint8)
            else:
                canvas = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA).copy()
            x0, y0 = (w - face_px) // 2 + jx, (h - face_px) // 2 + jy
            canvas[y0 : y0 + face_px, x0 : x0 + face_px] = face
            if noise > 0:
                canvas = np.clip(canvas + sensor.normal(0.0, noise, canvas.shape), 0, 255).astype(np.uint8)
            bgr = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
            if video is not None:
                video.write(bgr)
            else:
                cv2.imwrite(str(out / f"frame_{index:05d}.png"), bgr)
            truth.append((index / fps, seg.emotion))
            index += 1
    if video is not None:
        video.release()
    return truth
