"""A live camera: a capture thread keeps only the newest frame and reopens a failed camera with backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from moodbox.support.backoff import Backoff
from moodbox.support.repeats import Repeats
from moodbox.vision.sources.base import Frame

log = logging.getLogger(__name__)

SUMMARY_S = 600.0  # while a camera stays away, how often the log says so again


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
        self._gap = 0.0  # the camera's time between frames (a moving average; 0 until known)
        self._thread: threading.Thread | None = None
        self._beat = time.monotonic()
        self.status = "starting"
        self._down = Repeats(log, every_s=SUMMARY_S)  # the camera's failures while it stays away

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
        pause = Backoff(self.retry_s, self.retry_max_s)
        while not self._stop.is_set():
            self._beat = time.monotonic()
            try:
                cam = self._opener()
            except Exception as exc:  # drivers raise anything: keep trying, say why
                delay = pause.next()
                self._failed(f"cannot be opened: {exc}", delay)
                self._set_status(f"camera unavailable: {exc}")
                self._wait(delay)
                continue
            try:
                while not self._stop.is_set():
                    img = cam.read()
                    if img is None:
                        raise RuntimeError("no frame delivered")
                    self._beat = time.monotonic()
                    if self._down.active() or not self._seq:
                        self._recovered()
                    with self._cond:
                        now = time.monotonic()
                        if self._latest is not None and now - self._latest[1] < self.retry_max_s:
                            gap = now - self._latest[1]
                            self._gap = gap if not self._gap else 0.8 * self._gap + 0.2 * gap
                        self._latest = (img, now)
                        self._seq += 1
                        self._cond.notify_all()
                    pause.reset()
            except Exception as exc:
                self._failed(f"failed: {exc}", pause.delay)  # the pause about to be taken
                self._set_status(f"camera failed: {exc}")
            finally:
                try:
                    cam.release()
                except Exception:  # releasing a vanished device may raise; nothing to do about it
                    log.debug("release failed", exc_info=True)
            self._wait(pause.next())

    def _failed(self, why: str, delay: float) -> None:
        """The first failure is a warning; while the camera stays away, one summary every SUMMARY_S."""
        if not self._down.occurred():
            return
        if self._down.count() == 1:
            log.warning(
                "camera %s %s; retrying (first in %.0f s, backing off to %.0f s)", self.name, why, delay, self.retry_max_s
            )
        else:
            log.warning(
                "camera %s still unavailable after %.0f s and %d attempts: %s",
                self.name,
                self._down.seconds(),
                self._down.count(),
                why,
            )

    def _recovered(self) -> None:
        if not self._down.active():
            log.info("camera %s delivering frames", self.name)
        else:
            log.info("camera %s back after %.0f s (%d attempts)", self.name, self._down.seconds(), self._down.count())
        self._down.ended()
        self._set_status("ok")

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._capture, name=f"capture:{self.name}", daemon=True)
            self._thread.start()
        period = 1.0 / self.fps
        next_due = time.monotonic()
        seen = 0
        index = 0
        while not self._stop.is_set():
            # A camera faster than fps: sleep until the next frame is due, then take the newest. One that
            # delivers about fps frames a second (the Pi camera is asked for camera.fps): take each as it
            # comes, one wake-up a frame instead of two (this is most of what an empty room costs).
            wait = next_due - time.monotonic()
            if wait > 0 and self._gap < 0.9 * period and self._stop.wait(wait):
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
