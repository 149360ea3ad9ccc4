"""Sources read from disk: a video file and a folder of images (or one still image).

Timestamps come from the file (the video position, or the image's index over ``fps``), so a replay
faster than real time behaves exactly as the live camera would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import cv2
import numpy as np

from moodbox.vision.sources.base import IMAGE_SUFFIXES, Frame, SourceError
from moodbox.vision.sources.pacing import Pacer

log = logging.getLogger(__name__)


def open_video(target: str) -> cv2.VideoCapture:
    """A video file or stream, decoded on one thread: FFmpeg's default of a thread per core held 3 MB
    more and two more threads for no gain at the box's 10 frames a second (one thread is the box's rule).
    A backend that refuses the setting opens it as it likes."""
    cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if cap.isOpened():
        return cap
    cap.release()
    return cv2.VideoCapture(target)


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
        cap = open_video(str(path))
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
            cap = open_video(str(self.path))
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
    """The images of a folder in name order (or one still image), ``fps`` apart.

    The folder is listed again on every pass, so images added or removed while looping are seen. An image
    that cannot be decoded keeps its time slot (a dropped frame) and is reported once; one that vanished is
    passed over. A pass that yields nothing (the folder emptied or removed) waits for images, checking every
    ``rescan_s``, instead of spinning: the old loop ran flat out over the missing files and advanced the
    timeline for each, so the pacer then waited for days."""

    def __init__(
        self,
        path: Path,
        fps: float = 2.0,
        realtime: bool = True,
        loop: bool = False,
        on_status: Callable[[str], None] | None = None,
        rescan_s: float = 1.0,
    ) -> None:
        self.path = path
        self.name = str(path)
        self._single = not path.is_dir()
        self.files = self._scan()
        if not self.files and not (loop and path.is_dir()):  # a looping folder may start empty: it waits
            raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        self.fps = fps
        self.realtime = realtime
        self.loop = loop
        self.rescan_s = rescan_s
        self._on_status = on_status or (lambda s: None)
        self._stop = threading.Event()
        self._reported: set[Path] = set()  # unreadable images already logged
        self._empty_since: float | None = None

    def alive(self) -> bool:
        return True

    def _scan(self) -> list[Path]:
        if self._single:
            return [self.path] if self.path.is_file() else []
        try:
            return sorted(f for f in self.path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        except OSError:  # the folder itself is gone or unreadable: the same as empty, and retried
            return []

    def _read(self, f: Path) -> tuple[bool, np.ndarray | None]:
        """(exists, image): a file that vanished since the listing is not an unreadable image."""
        if not f.is_file():  # checked first: OpenCV prints its own warning for every missing file
            return False, None
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is not None:
            self._reported.discard(f)
            return True, img
        if f not in self._reported:
            self._reported.add(f)
            log.warning("%s: cannot be read as an image; skipped", f)
        return True, None

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        pacer = Pacer(self.realtime, self._stop)
        index = 0
        files = self.files
        while not self._stop.is_set():
            yielded = 0
            for f in files:
                if self._stop.is_set():
                    return
                exists, img = self._read(f)
                if not exists:
                    continue
                t = index / self.fps
                index += 1  # an unreadable image still takes its time slot, like a dropped frame
                pacer.wait(t)
                if img is None:
                    continue
                self._resumed()
                yield Frame(img, t, index - 1)
                yielded += 1
            if not self.loop:
                return
            if yielded == 0:
                waited = yield from self._wait_for_images(tick_s)
                if self.realtime:  # the time without frames passes on the timeline too, as for a camera
                    index += round(waited * self.fps)
                pacer.rebase(index / self.fps)
            files = self.files = self._scan()

    def _wait_for_images(self, tick_s: float | None) -> Generator[None, None, float]:
        """Until a listing shows images again (or close): yields None every ``tick_s`` so the caller stays
        responsive; returns the seconds waited."""
        t0 = time.monotonic()
        if self._empty_since is None:
            self._empty_since = t0
            why = "is gone" if not self.path.exists() else "holds no readable images"
            log.warning("%s %s; waiting for images (looking every %.0f s)", self.name, why, self.rescan_s)
            self._on_status(f"no images: {self.name} {why}; waiting")
        last_tick = t0
        while not self._stop.is_set():
            step = self.rescan_s if tick_s is None else min(self.rescan_s, tick_s)
            if self._stop.wait(step):
                break
            now = time.monotonic()
            if tick_s is not None and now - last_tick >= tick_s:
                last_tick = now
                yield None
            if now - t0 >= self.rescan_s and self._scan():
                break
        return time.monotonic() - t0

    def _resumed(self) -> None:
        if self._empty_since is not None:
            log.info("%s: images again after %.0f s; resumed", self.name, time.monotonic() - self._empty_since)
            self._empty_since = None
            self._on_status("ok")

    def close(self) -> None:
        self._stop.set()
