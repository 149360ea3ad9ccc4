"""The daemon: source -> faces -> emotions -> smoother -> mood -> player, with the MQTT bridge beside it.

What the owner sets from Home Assistant lives in a :class:`~moodbox.settings.SettingsStore` and is
applied before anything starts: with privacy ON the camera is never opened.

Threads: the processing thread owns the source and the vision pipeline; the player owns the MPD
connection; paho owns the MQTT connection. The processing thread only hands results over through
non-blocking calls, so a slow MPD or broker never stalls the camera, and the live source keeps only
the newest frame, so a slow stage drops frames instead of queueing them. Only the processing thread
pings the systemd watchdog: a wedged pipeline gets the service restarted.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from moodbox.boxstate import ShaperSettings, StateShaper, Stats, step_confidence
from moodbox.config import Config
from moodbox.emotions import EmotionClassifier
from moodbox.faces import use_threads
from moodbox.feedback import FeedbackStore, default_state_dir
from moodbox.mqtt import MqttBridge
from moodbox.pipeline import FrameResult, VisionPipeline
from moodbox.player import MpdPlayer
from moodbox.sdnotify import Notifier
from moodbox.settings import OwnerSettings, SettingsStore
from moodbox.sources import FrameSource, SourceError, open_source

log = logging.getLogger(__name__)

# How long the start waits for MPD's first answer before MQTT comes up (an MPD that is down: no longer).
FIRST_STATE_WAIT_S = 3.0


class Daemon:
    def __init__(self, cfg: Config, classifier: EmotionClassifier | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        # OpenCV's thread pool is the process's: set it here, so a SIGHUP reload (a new Daemon) applies it too
        use_threads(cfg.detection.threads)
        self.pipeline = VisionPipeline(cfg, classifier)
        state_dir = cfg.music.state_dir or default_state_dir()
        moods = cfg.music.moods()
        self.settings = SettingsStore(state_dir, OwnerSettings(auto_dj=cfg.music.auto_dj), moods)
        saved = self.settings.get()
        self.player = MpdPlayer(cfg.music, FeedbackStore(state_dir / "feedback.json"),
                                on_volume=lambda v: self.settings.update(volume=v))
        self._restore(saved)
        self.shaper = StateShaper(ShaperSettings(
            cfg.mqtt.confidence_step, cfg.mqtt.confidence_interval_s, cfg.mqtt.diagnostics_interval_s, cfg.smoothing.no_face_s))
        self.bridge = MqttBridge(
            cfg.mqtt, self, moods, cfg.music.max_volume, snapshot=self.snapshot, emotions=list(self.pipeline.classifier.labels),
            clear_legacy=not saved.legacy_discovery_cleared,
            on_legacy_cleared=lambda: self.settings.update(legacy_discovery_cleared=True),
        ) if cfg.mqtt.enabled else None
        self.stats = Stats()
        self._stop = threading.Event()
        self._privacy = threading.Event()
        if saved.privacy:
            self._privacy.set()
        self._privacy_changed = threading.Event()
        self._lock = threading.Lock()
        self._last: FrameResult | None = None
        self._source_status = "starting"
        self._thread: threading.Thread | None = None
        self._ready = False
        self._last_status_line = ""

    def _restore(self, saved: OwnerSettings) -> None:
        """The owner's settings onto the player before it starts (its setters only record intent)."""
        self.player.set_auto_dj(saved.auto_dj)
        self.player.set_override(saved.mood)
        self.player.set_music(saved.music)
        if saved.volume is not None:
            self.player.set_volume(saved.volume)
        log.info("owner settings: privacy %s, auto-DJ %s, mood %s, music %s, volume %s", "ON" if saved.privacy else "OFF",
                 "ON" if saved.auto_dj else "OFF", saved.mood or "auto", "ON" if saved.music else "OFF",
                 "as MPD has it" if saved.volume is None else saved.volume)

    # --- Commands (from MQTT; any thread); each is saved before it is acted on ---

    def set_auto_dj(self, on: bool) -> None:
        self.settings.update(auto_dj=on)
        self.player.set_auto_dj(on)
        self._publish()

    def set_privacy(self, on: bool) -> None:
        self.settings.update(privacy=on)
        if on == self._privacy.is_set():
            return
        (self._privacy.set if on else self._privacy.clear)()
        if on:
            self.shaper.clear()
        self._privacy_changed.set()
        log.info("privacy %s: camera %s", "ON" if on else "OFF", "closed" if on else "reopened")
        self._publish()

    def set_mood(self, mood: str | None) -> None:
        self.settings.update(mood=mood)
        self.player.set_override(mood)
        self._publish()

    def set_music(self, on: bool) -> None:
        self.settings.update(music=on)
        self.player.set_music(on)

    def skip(self) -> None:
        self.player.skip()

    def set_volume(self, percent: int) -> None:
        self.settings.update(volume=max(0, min(int(percent), self.cfg.music.max_volume)))
        self.player.set_volume(percent)

    # --- state ---

    def snapshot(self) -> dict[str, Any]:
        """The state JSON of DESIGN §5: None wherever nothing was measured."""
        with self._lock:
            source_status = self._source_status
        privacy = self._privacy.is_set()
        p = self.player.state()
        status = "privacy" if privacy else source_status
        if p.error:
            status = f"{status}; {p.error}"
        vision = self.shaper.vision() if not privacy else {"emotion": None, "confidence": None, "scores": {}, "face": None, "faces": None}
        return {
            **vision,
            "mood": p.mood,
            "mood_select": self.player.override or "auto",
            "playlist": p.source,
            "song": p.song,
            "music": p.music,
            "auto_dj": "ON" if p.auto_dj else "OFF",
            "privacy": "ON" if privacy else "OFF",
            **self.shaper.diagnostics(None if privacy else self.stats.fps, None if privacy else self.stats.inference_ms),
            "volume": p.volume,
            "status": status,
            "ts": int(time.time()),
        }

    def _publish(self, force: bool = False) -> None:
        if self.bridge is not None:
            self.bridge.publish_state(self.snapshot(), force=force)

    def _set_source_status(self, status: str) -> None:
        with self._lock:
            changed = status != self._source_status
            self._source_status = status
        if changed:
            self._publish()

    # --- lifecycle ---

    def run(self) -> int:
        """Runs until SIGTERM/SIGINT; returns the exit code."""
        handler = lambda signum, frame: self.stop()  # noqa: E731
        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(1.0):
                self._status_line()
        finally:
            self.shutdown()
            for s, h in old.items():
                signal.signal(s, h)
        return 0

    def start(self) -> None:
        self.player.start()
        # The first state Home Assistant gets after a restart carries the owner's volume and music as MPD
        # has them, not null (it showed the volume 40 -> unknown -> 40); bounded, for an MPD that is down.
        self.player.wait_reported(FIRST_STATE_WAIT_S)
        if self.bridge is not None:
            self.bridge.start()
        self._thread = threading.Thread(target=self._process_loop, name="pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._privacy_changed.set()

    def shutdown(self) -> None:
        """Clean stop within 2 s: offline published, MPD left playing."""
        self._stop.set()
        self.notifier.stopping()
        if self._thread is not None:
            self._thread.join(1.0)
        if self.bridge is not None:
            self.bridge.stop(timeout=0.8)
        self.player.stop(timeout=0.5)
        log.info("stopped")

    def _status_line(self) -> None:
        s = self.snapshot()
        line = (
            f"{s['status']}; emotion {s['emotion'] or '-'}, mood {s['mood'] or '-'}, {s['fps'] or 0:.1f} fps, "
            f"MQTT {'up' if self.bridge and self.bridge.connected.is_set() else 'down' if self.bridge else 'off'}, "
            f"MPD {'up' if self.player.state().connected else 'down'}"
        )
        if line != self._last_status_line:
            self._last_status_line = line
            self.notifier.status(line)

    def _open_source(self) -> FrameSource:
        cam = self.cfg.camera
        return open_source(
            cam.source, width=cam.width, height=cam.height, fps=cam.fps, realtime=cam.realtime,
            folder_fps=cam.folder_fps, loop=cam.loop, retry_s=cam.retry_s, retry_max_s=cam.retry_max_s,
            on_status=lambda s: self._set_source_status(s), drop_late=True,
        )

    def _alive(self) -> None:
        """The processing loop is turning: tell systemd (READY once, then the watchdog)."""
        if not self._ready:
            self._ready = True
            self.notifier.ready("running")
            log.info("pipeline running (source %s)", self.cfg.camera.source)
        self.notifier.watchdog()

    def _idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and not self._privacy_changed.is_set() and time.monotonic() < end:
            self._alive()
            self._stop.wait(min(0.5, max(0.0, end - time.monotonic())))

    def _process_loop(self) -> None:
        cam = self.cfg.camera
        delay = cam.retry_s
        while not self._stop.is_set():
            self._privacy_changed.clear()
            if self._privacy.is_set():
                self.pipeline.reset()
                self.stats.idle()
                self.shaper.clear()
                with self._lock:
                    self._last = None
                self._set_source_status("privacy")
                self._idle(3600)
                continue
            try:
                source = self._open_source()
            except SourceError as exc:
                log.warning("%s; retrying in %.0f s", exc, delay)
                self._set_source_status(f"source unavailable: {exc}")
                self._idle(delay)
                delay = min(delay * 2, cam.retry_max_s)
                continue
            self._set_source_status("ok")
            ended = self._consume(source)
            source.close()
            self.stats.idle()
            self.shaper.clear()
            if ended and not self._stop.is_set():
                log.warning("source %s ended; reopening in %.0f s", source.name, delay)
                self._set_source_status(f"source ended; reopening in {delay:.0f} s")
                self._idle(delay)
                delay = min(delay * 2, cam.retry_max_s)
            else:
                delay = cam.retry_s

    def _consume(self, source: FrameSource) -> bool:
        """Process frames until the source ends (True) or privacy/stop interrupts (False)."""
        last_emotion: str | None = None
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
            self.shaper.observe(result.smoothed, result.smoothed.faces)  # every face in view, classified or not
            with self._lock:
                self._last = result
            emotion = result.smoothed.emotion
            changed = emotion != last_emotion
            if changed:
                if emotion:
                    log.info("stable emotion: %s (%.2f)", emotion, step_confidence(result.smoothed.confidence, self.cfg.mqtt.confidence_step))
                else:
                    log.info("nobody in view")
                last_emotion = emotion
            self.player.set_emotion(emotion)
            # a new stable emotion goes out at once, with the very confidence just logged (not a later one)
            self._publish(force=changed)
        return True


def run(cfg: Config) -> int:
    return Daemon(cfg).run()
