"""Frame sources: the Pi camera (Picamera2), OpenCV devices and streams, video files and image folders.

Every frame carries a monotonic timestamp in seconds. For files it comes from the file itself (the video
position, or the image's index over ``folder_fps``), so replaying a file faster than real time behaves
exactly as the live camera would. Live sources keep only the newest frame and reopen a failed camera with
backoff instead of raising.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


class SourceError(RuntimeError):
    """A source that cannot be opened at all (a wrong path, a missing library)."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR (H, W, 3) or grey (H, W), uint8
    t: float  # seconds, monotonic; from the file for files
    index: int


class FrameSource(Protocol):
    name: str

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        """Frames until the source ends (files) or ``close`` is called (live sources). With ``tick_s``, a
        live source that has no new frame for that long yields None, so the caller stays responsive."""
        ...

    def alive(self) -> bool:
        """False when the source is wedged (a capture thread stuck in a driver call)."""
        ...

    def close(self) -> None: ...


class _Pacer:
    """Sleeps so that frame timestamps are honoured in wall-clock time (``realtime`` replay)."""

    def __init__(self, enabled: bool, stop: threading.Event) -> None:
        self.enabled = enabled
        self._stop = stop
        self._origin: tuple[float, float] | None = None

    def wait(self, t: float) -> None:
        if not self.enabled:
            return
        delay = self.lateness(t) * -1
        if delay > 0:
            self._stop.wait(delay)

    def lateness(self, t: float) -> float:
        """Seconds the frame at ``t`` is behind its wall-clock slot (negative: early)."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, t)
        return now - (self._origin[0] + (t - self._origin[1]))


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
        pacer = _Pacer(self.realtime, self._stop)
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
        pacer = _Pacer(self.realtime, self._stop)
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


class Camera(Protocol):
    """The narrow interface a live camera driver offers the capture thread."""

    def read(self) -> np.ndarray | None: ...

    def release(self) -> None: ...


class LiveSource:
    """A capture thread reads the camera as fast as it delivers and keeps only the newest frame;
    ``frames`` hands them out at ``fps``. A camera that fails is released and reopened with backoff."""

    def __init__(
        self,
        name: str,
        opener: Callable[[], Camera],
        fps: float = 10.0,
        retry_s: float = 2.0,
        retry_max_s: float = 60.0,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._opener = opener
        self.fps = fps
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self._on_status = on_status or (lambda s: None)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._beat = time.monotonic()
        self.status = "starting"

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._on_status(status)

    def alive(self, stale_s: float = 15.0) -> bool:
        """The capture thread has come round its loop recently (it is not stuck inside a driver)."""
        return self._thread is None or (self._thread.is_alive() and time.monotonic() - self._beat < stale_s)

    def _wait(self, seconds: float) -> None:
        """Sleep in small steps, keeping the heartbeat fresh while a failed camera waits to be reopened."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            self._beat = time.monotonic()
            self._stop.wait(min(left, 1.0))
        self._beat = time.monotonic()

    def _capture(self) -> None:
        delay = self.retry_s
        while not self._stop.is_set():
            self._beat = time.monotonic()
            try:
                cam = self._opener()
            except Exception as exc:  # drivers raise anything: keep trying, say why
                log.warning("camera %s cannot be opened: %s; retrying in %.0f s", self.name, exc, delay)
                self._set_status(f"camera unavailable: {exc}")
                self._wait(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            log.info("camera %s opened", self.name)
            self._set_status("ok")
            try:
                while not self._stop.is_set():
                    img = cam.read()
                    if img is None:
                        raise RuntimeError("no frame delivered")
                    self._beat = time.monotonic()
                    with self._cond:
                        self._latest = (img, time.monotonic())
                        self._seq += 1
                        self._cond.notify_all()
                    delay = self.retry_s
            except Exception as exc:
                log.warning("camera %s failed: %s; reopening in %.0f s", self.name, exc, delay)
                self._set_status(f"camera failed: {exc}")
            finally:
                try:
                    cam.release()
                except Exception:  # releasing a vanished device may raise; nothing to do about it
                    log.debug("release failed", exc_info=True)
            self._wait(delay)
            delay = min(delay * 2, self.retry_max_s)

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._capture, name=f"capture:{self.name}", daemon=True)
            self._thread.start()
        period = 1.0 / self.fps
        next_due = time.monotonic()
        seen = 0
        index = 0
        while not self._stop.is_set():
            wait = next_due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            waited = 0.0
            with self._cond:
                while self._seq == seen and not self._stop.is_set() and (tick_s is None or waited < tick_s):
                    self._cond.wait(timeout=0.25 if tick_s is None else min(0.25, tick_s))
                    waited += 0.25 if tick_s is None else min(0.25, tick_s)
                if self._stop.is_set():
                    return
                fresh = self._seq != seen and self._latest is not None
                if fresh:
                    img, t = self._latest  # type: ignore[misc]
                    seen = self._seq
            if not fresh:
                yield None  # no new frame for tick_s: let the caller breathe
                continue
            next_due = max(next_due + period, time.monotonic())
            yield Frame(img, t, index)
            index += 1

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


class _OpenCVCamera:
    def __init__(self, target: int | str, width: int, height: int) -> None:
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if isinstance(target, int) else cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise RuntimeError(f"OpenCV cannot open {target!r}")
        if isinstance(target, int):
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def read(self) -> np.ndarray | None:
        ok, img = self._cap.read()
        return img if ok else None

    def release(self) -> None:
        self._cap.release()


class _Picamera2Camera:
    def __init__(self, width: int, height: int) -> None:
        from picamera2 import Picamera2  # imported here: only the Pi has it

        self._cam: Any = Picamera2()
        # "RGB888" is BGR in memory, which is what OpenCV expects
        self._cam.configure(self._cam.create_video_configuration(main={"size": (width, height), "format": "RGB888"}))
        self._cam.start()

    def read(self) -> np.ndarray | None:
        return self._cam.capture_array("main")

    def release(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def _require_picamera2() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        raise SourceError(
            "camera.source is 'picamera2' but the picamera2 module is not installed. On Raspberry Pi OS: "
            "sudo apt install -y --no-install-recommends python3-picamera2, and create the virtual environment "
            "with --system-site-packages. Elsewhere, set camera.source to a V4L2 index (\"0\"), a video file "
            "or a folder of images."
        ) from None


def open_source(
    source: str | os.PathLike[str],
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 10.0,
    realtime: bool = True,
    folder_fps: float = 2.0,
    loop: bool = False,
    retry_s: float = 2.0,
    retry_max_s: float = 60.0,
    on_status: Callable[[str], None] | None = None,
    drop_late: bool = False,
) -> FrameSource:
    """The source named by ``camera.source``; raises :class:`SourceError` naming what is wrong."""
    source = os.fspath(source)
    live = dict(fps=fps, retry_s=retry_s, retry_max_s=retry_max_s, on_status=on_status)
    if source == "picamera2":
        _require_picamera2()
        return LiveSource("picamera2", lambda: _Picamera2Camera(width, height), **live)
    if re.fullmatch(r"\d+", source):
        index = int(source)
        return LiveSource(f"/dev/video{index}", lambda: _OpenCVCamera(index, width, height), **live)
    if re.match(r"^(rtsp|rtsps|http|https)://", source):
        return LiveSource(re.sub(r"//[^@/]*@", "//***@", source), lambda: _OpenCVCamera(source, width, height), **live)
    path = Path(source).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=folder_fps, realtime=realtime, loop=loop)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolderSource(path, fps=folder_fps, realtime=realtime, loop=loop)
        return VideoFileSource(path, realtime=realtime, loop=loop, drop_late=drop_late)
    raise SourceError(
        f"camera.source {source!r}: no such file or folder (expected picamera2, a V4L2 index, a video file, "
        "a folder of images or an rtsp:// URL)"
    )
