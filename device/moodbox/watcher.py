"""The pipeline thread: the source, the vision pipeline and the systemd watchdog.

It owns the camera (opened, retried with a growing pause, closed while privacy is ON), the
:class:`~moodbox.vision.pipeline.VisionPipeline` and its frame statistics. It never touches MPD, MQTT or
the owner's settings: every processed frame becomes an :class:`Observation` handed to ``report`` (the
daemon queues it for its own loop), and so does every change of the source's status. The live source
keeps only the newest frame, so a slow stage drops frames instead of queueing them. Only this thread pings
the watchdog: a wedged pipeline gets the service restarted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from moodbox.config import CameraConfig
from moodbox.sdnotify import Notifier
from moodbox.support.backoff import Backoff
from moodbox.vision.pipeline import VisionPipeline
from moodbox.vision.roomstate import Stats
from moodbox.vision.smoothing import SmoothedEmotion
from moodbox.vision.sources import FrameSource, SourceError, open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """One processed frame, as the daemon's loop needs it."""

    smoothed: SmoothedEmotion
    fps: float | None
    inference_ms: float | None


@dataclass(frozen=True)
class SourceStatus:
    """The source's state changed: ``ok``, ``privacy``, ``source unavailable: …``, ``source ended …``;
    ``idle``: no frames from now on (nothing about the room is known)."""

    status: str
    idle: bool = False


class Watcher:
    def __init__(
        self,
        cfg: CameraConfig,
        pipeline: VisionPipeline,
        notifier: Notifier,
        report: Callable[[Observation | SourceStatus], None],
        privacy: bool,
    ) -> None:
        self.cfg = cfg
        self.pipeline = pipeline
        self.notifier = notifier
        self.report = report
        self.stats = Stats()  # this thread's alone
        self._stop = threading.Event()
        self._privacy = threading.Event()
        if privacy:
            self._privacy.set()
        self._privacy_changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = False

    # --- from the daemon's loop ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pipeline", daemon=True)
        self._thread.start()

    def set_privacy(self, on: bool) -> None:
        """ON closes the camera (within one frame); OFF opens it again."""
        if on == self._privacy.is_set():
            return
        (self._privacy.set if on else self._privacy.clear)()
        self._privacy_changed.set()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._privacy_changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the pipeline thread ---

    def _open_source(self) -> FrameSource:
        cam = self.cfg
        return open_source(
            cam.source,
            width=cam.width,
            height=cam.height,
            fps=cam.fps,
            realtime=cam.realtime,
            folder_fps=cam.folder_fps,
            loop=cam.loop,
            retry_s=cam.retry_s,
            retry_max_s=cam.retry_max_s,
            on_status=lambda s: self.report(SourceStatus(s)),
            drop_late=True,
        )

    def _alive(self) -> None:
        """The processing loop is turning: tell systemd (READY once, then the watchdog)."""
        if not self._ready:
            self._ready = True
            self.notifier.ready("running")
            log.info("pipeline running (source %s)", self.cfg.source)
        self.notifier.watchdog()

    def _idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and not self._privacy_changed.is_set() and time.monotonic() < end:
            self._alive()
            self._stop.wait(min(0.5, max(0.0, end - time.monotonic())))

    def _loop(self) -> None:
        pause = Backoff(self.cfg.retry_s, self.cfg.retry_max_s)
        while not self._stop.is_set():
            self._privacy_changed.clear()
            if self._privacy.is_set():
                self.pipeline.reset()
                self.stats.idle()
                self.report(SourceStatus("privacy", idle=True))
                self._idle(3600)
                continue
            try:
                source = self._open_source()
            except SourceError as exc:
                delay = pause.next()
                log.warning("%s; retrying in %.0f s", exc, delay)
                self.report(SourceStatus(f"source unavailable: {exc}"))
                self._idle(delay)
                continue
            self.report(SourceStatus("ok"))
            ended = self._consume(source)
            source.close()
            self.stats.idle()
            self.report(SourceStatus("ok", idle=True))
            if ended and not self._stop.is_set():
                delay = pause.next()
                log.warning("source %s ended; reopening in %.0f s", source.name, delay)
                self.report(SourceStatus(f"source ended; reopening in {delay:.0f} s"))
                self._idle(delay)
            else:
                pause.reset()

    def _consume(self, source: FrameSource) -> bool:
        """Process frames until the source ends (True) or privacy/stop interrupts (False)."""
        for frame in source.frames(tick_s=1.0):
            if self._stop.is_set() or self._privacy_changed.is_set():
                return False
            if frame is None:
                if source.alive():
                    self._alive()
                continue
            self._alive()
            result = self.pipeline.process(frame)
            self.stats.update(result)
            self.report(Observation(result.smoothed, self.stats.fps, self.stats.inference_ms))
        return True
