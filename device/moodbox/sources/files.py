"""Sources read from disk: a video file and a folder of images (or one still image).

Timestamps come from the file (the video position, or the image's index over ``fps``), so a replay
faster than real time behaves exactly as the live camera would.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2

from moodbox.sources.base import IMAGE_SUFFIXES, Frame, SourceError
from moodbox.sources.timeline import Pacer

log = logging.getLogger(__name__)


class VideoFileSource:
    """A video file, timestamps from the file. With ``drop_late`` (the daemon), real-time replay skips
    frames it has fallen behind on, as a live camera would, instead of drifting ever later."""

    def __init__(self, path: Path, realtime: bool = True, loop: bool = False, drop_late: bool = False) -> None:
        self.path = path
        self.name = str(path)
        self.realtime = realtime
        self.loop = loop
        self.drop_late = drop_late
        self._stop = threading.Event()
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
        if not ok:
            raise SourceError(f"{path}: cannot be decoded as a video")

    def alive(self) -> bool:
        return True

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        pacer = Pacer(self.realtime, self._stop)
        index = 0
        offset = 0.0
        while not self._stop.is_set():
            cap = cv2.VideoCapture(str(self.path))
            fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
            last_t = offset
            n = 0
            try:
                while not self._stop.is_set():
                    if not cap.grab():
                        break
                    pos = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    t = offset + (pos if pos > 0 or n == 0 else n / fps)
                    n += 1
                    if self.drop_late and self.realtime and pacer.lateness(t) > 1.0 / fps:
                        index += 1
                        continue  # behind: skip decoding this one
                    ok, img = cap.retrieve()
                    if not ok:
                        break
                    pacer.wait(t)
                    yield Frame(img, t, index)
                    last_t = t
                    index += 1
            finally:
                cap.release()
            if not self.loop or n == 0:
                return
            offset = last_t + 1.0 / fps

    def close(self) -> None:
        self._stop.set()


class ImageFolderSource:
    """The images of a folder in name order (or one still image), ``fps`` apart."""

    def __init__(self, path: Path, fps: float = 2.0, realtime: bool = True, loop: bool = False) -> None:
        self.name = str(path)
        if path.is_dir():
            self.files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        else:
            self.files = [path]
        self.fps = fps
        self.realtime = realtime
        self.loop = loop
        self._stop = threading.Event()

    def alive(self) -> bool:
        return True

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        pacer = Pacer(self.realtime, self._stop)
        index = 0
        while not self._stop.is_set():
            for f in self.files:
                if self._stop.is_set():
                    return
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                t = index / self.fps
                index += 1  # an unreadable image still takes its time slot, like a dropped frame
                if img is None:
                    log.warning("%s: cannot be read as an image; skipped", f)
                    continue
                pacer.wait(t)
                yield Frame(img, t, index - 1)
            if not self.loop:
                return

    def close(self) -> None:
        self._stop.set()
