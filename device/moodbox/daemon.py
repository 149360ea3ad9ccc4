"""The daemon: source -> faces -> emotions -> smoother -> mood -> player, with the MQTT bridge beside it.

Threads, and what each owns:

- **the daemon's loop** (the thread that calls :meth:`Daemon.run`): the owner's settings (it alone
  writes them), the commands (the bridge queues them here; none runs on paho's thread), the mood
  intent (:class:`~moodbox.music.mood.MoodIntent`: emotion, mood choice, auto-DJ -> one plan handed to
  the player), the room as published (:class:`~moodbox.vision.roomstate.StateShaper`) and the published
  :class:`~moodbox.home.state.BoxState`: only this loop builds it.
- ``pipeline`` (:class:`~moodbox.watcher.Watcher`): the camera and the vision pipeline; it queues an
  observation per frame. ``capture``: a live camera's newest frame.
- ``mpd-player`` (:class:`~moodbox.music.player.MpdPlayer`): the MPD connection, the queue.
- paho's thread and ``mqtt-state`` (:class:`~moodbox.home.bridge.MqttBridge`): the MQTT connection.

What the owner sets is saved before it is acted on and applied before anything starts: with privacy ON
the camera is never opened.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass

from moodbox.config import Config
from moodbox.grouping import Grouping, MemberSaid
from moodbox.home import MqttBridge
from moodbox.home.commands import Command, dispatch
from moodbox.home.state import BoxState
from moodbox.library.status import StatusWatch
from moodbox.music.feedback import FeedbackStore
from moodbox.music.mood import MoodIntent, MoodPolicy
from moodbox.music.player import MpdPlayer
from moodbox.sdnotify import Notifier
from moodbox.settings import OwnerSettings, SettingsStore, default_state_dir
from moodbox.vision.emotions import EmotionClassifier
from moodbox.vision.faces import use_threads
from moodbox.vision.pipeline import VisionPipeline
from moodbox.vision.roomstate import StateShaper, step_confidence
from moodbox.watcher import Observation, SourceStatus, Watcher

log = logging.getLogger(__name__)

FIRST_STATE_WAIT_S = 3.0  # the start waits this long for MPD's first answer before MQTT comes up
STEP_S = 0.25  # how often the loop looks at the player's state (its song or volume change with the camera closed)


@dataclass(frozen=True)
class _VolumeAdopted:
    """The owner set MPD's volume through another client: it is the owner's volume now."""

    percent: int


@dataclass(frozen=True)
class _LegacyCleared:
    """The bridge cleared the discovery configs of older versions (once for good)."""


_Item = Command | Observation | SourceStatus | _VolumeAdopted | _LegacyCleared | MemberSaid


class Daemon:
    def __init__(self, cfg: Config, classifier: EmotionClassifier | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        # OpenCV's thread pool is the process's: set it here, so a SIGHUP reload (a new Daemon) applies it too
        use_threads(cfg.detection.threads)
        self._inbox: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        pipeline = VisionPipeline(cfg, classifier)
        self.labels = list(pipeline.classifier.labels)
        state_dir = cfg.music.state_dir or default_state_dir()
        self.library = StatusWatch(state_dir)  # the nightly scan's figures
        self.settings = SettingsStore(state_dir, OwnerSettings(auto_dj=cfg.music.auto_dj), cfg.music.moods())
        saved = self.settings.get()
        self.intent = MoodIntent(MoodPolicy.from_config(cfg.music, self.labels), saved.auto_dj, saved.mood)
        self.player = MpdPlayer(
            cfg.music, FeedbackStore(state_dir / "feedback.json"), on_volume=lambda v: self._inbox.put(_VolumeAdopted(v))
        )
        self._restore(saved)
        self.shaper = StateShaper.from_config(cfg)
        self.watcher = Watcher(cfg.camera, pipeline, self.notifier, self._inbox.put, privacy=saved.privacy)
        self.group = Grouping(cfg, time.monotonic())
        self.player.set_following(self.group.following())  # a follower starts silent, waiting for its leader
        self.bridge = (
            MqttBridge(
                cfg.mqtt,
                self._inbox.put,
                cfg.music.moods(),
                cfg.music.max_volume,
                emotions=self.labels,
                clear_legacy=not saved.legacy_discovery_cleared,
                on_legacy_cleared=lambda: self._inbox.put(_LegacyCleared()),
                members=self.group.listens_to,  # a leader's members, a follower's leader
                on_member=lambda m, kind, p: self._inbox.put(MemberSaid(m, kind, p, time.monotonic())),
                role=cfg.group.part(),
                beat=self.group.beat(cfg.mqtt.device_id),
            )
            if cfg.mqtt.enabled
            else None
        )
        self._stop = threading.Event()
        self._privacy = saved.privacy
        self._source_status = "starting"
        self._figures: tuple[float | None, float | None] = (None, None)  # fps, inference ms
        self._last_emotion: str | None = None
        self._last_status_line = ""

    @property
    def pipeline(self) -> VisionPipeline:
        return self.watcher.pipeline

    def _restore(self, saved: OwnerSettings) -> None:
        """The owner's settings onto the player before it starts (its setters only record intent)."""
        self.player.set_plan(self.intent.plan())
        self.player.set_music(saved.music)
        if saved.volume is not None:
            self.player.set_volume(saved.volume)
        log.info(
            "owner settings: privacy %s, auto-DJ %s, mood %s, music %s, volume %s",
            "ON" if saved.privacy else "OFF",
            "ON" if saved.auto_dj else "OFF",
            saved.mood or "auto",
            "ON" if saved.music else "OFF",
            "as MPD has it" if saved.volume is None else saved.volume,
        )

    # --- the owner's commands (the handlers of the command table), on the daemon's loop; each is saved
    # before it is acted on ---

    def set_auto_dj(self, on: bool) -> None:
        self.settings.update(auto_dj=on)
        self.intent.auto_dj = on
        self.player.set_plan(self.intent.plan())

    def set_privacy(self, on: bool) -> None:
        self.settings.update(privacy=on)
        if on == self._privacy:
            return
        self._privacy = on
        if on:
            self.shaper.clear()
            self._figures = (None, None)
        self.watcher.set_privacy(on)
        log.info("privacy %s: camera %s", "ON" if on else "OFF", "closed" if on else "reopened")

    def set_mood(self, mood: str | None) -> None:
        self.settings.update(mood=mood)
        self.intent.override = mood
        self.player.set_plan(self.intent.plan())

    def set_music(self, on: bool) -> None:
        self.settings.update(music=on)
        self.player.set_music(on)

    def skip(self) -> None:
        self.player.skip()

    def set_volume(self, percent: int) -> None:
        self.settings.update(volume=max(0, min(int(percent), self.cfg.music.max_volume)))
        self.player.set_volume(percent)

    # --- the published state: built here only ---

    def state(self) -> BoxState:
        privacy = self._privacy
        p = self.player.state()
        status = "privacy" if privacy else self._source_status
        if p.error:
            status = f"{status}; {p.error}"
        room = (
            self.shaper.vision()
            if not privacy
            else {"emotion": None, "confidence": None, "scores": {}, "face": None, "faces": None}
        )
        fps, ms = (None, None) if privacy else self._figures
        figures = self.shaper.diagnostics(fps, ms)
        settings = self.settings.get()
        return BoxState(
            **room,
            **self.group.fields(p, time.monotonic()),
            mood_select=settings.mood or "auto",
            auto_dj=settings.auto_dj,
            privacy=privacy,
            volume=p.volume,
            fps=figures["fps"],
            inference_ms=figures["inference_ms"],
            status=status,
            ts=int(time.time()),
        )

    def snapshot(self) -> dict:
        """The state as JSON (docs/home-assistant.md), for the status line and tests."""
        return self.state().as_json()

    def _publish(self, force: bool = False) -> None:
        if self.bridge is not None:
            self.bridge.publish_state(self.state(), force=force)
            self.bridge.publish_library(self.library.figures())

    # --- the loop ---

    def _handle(self, item: _Item) -> None:
        if isinstance(item, Observation):
            self._observe(item)
        elif isinstance(item, Command):
            try:
                dispatch(self, item)
            except Exception:  # a handler's bug must not end the box
                log.exception("command %s failed", item.name)
            self._publish()
        elif isinstance(item, SourceStatus):
            if item.idle:
                self.shaper.clear()
                self._figures = (None, None)
            if item.status != self._source_status:
                self._source_status = item.status
                self._publish()
        elif isinstance(item, _VolumeAdopted):
            self.settings.update(volume=item.percent)
        elif isinstance(item, _LegacyCleared):
            self.settings.update(legacy_discovery_cleared=True)
        elif isinstance(item, MemberSaid):
            self.group.heard(item)

    def _observe(self, seen: Observation) -> None:
        if self._privacy:
            return  # a frame from before the camera closed
        smoothed = seen.smoothed
        self._figures = (seen.fps, seen.inference_ms)
        self.shaper.observe(smoothed, smoothed.faces)  # every face in view, classified or not
        emotion = smoothed.emotion
        if emotion == self._last_emotion:
            return
        self._last_emotion = emotion
        if emotion:
            log.info("stable emotion: %s (%.2f)", emotion, step_confidence(smoothed.confidence, self.cfg.mqtt.confidence_step))
        else:
            log.info("nobody in view")
        self._follow(emotion)
        # a new stable emotion goes out at once, with the very confidence just logged (not a later one)
        self._publish(force=True)

    def _follow(self, emotion: str | None) -> None:
        """The music follows the stable emotion; a group leader's, the house's (every step: rooms time out)."""
        if (rooms := self.group.rooms) is not None:
            if not rooms.follow(self.shaper.vision(), self._privacy, time.monotonic()):
                return
            emotion = rooms.latest.emotion
        self.intent.see(emotion)
        self.player.set_plan(self.intent.plan())

    def step(self, timeout: float = STEP_S) -> None:
        """One turn of the loop: everything queued (in order), then the state (the bridge sends it only if
        it changed, rate-limited)."""
        try:
            item: _Item | None = self._inbox.get(timeout=timeout)
        except queue.Empty:
            item = None
        while item is not None:
            self._handle(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                item = None
        if self.group.rooms is not None:
            self._follow(None)
        if self.group.link is not None and self.group.link.update(time.monotonic()):
            self.player.set_following(self.group.link.following)
        self._publish()

    def run(self) -> int:
        """Runs until SIGTERM/SIGINT; returns the exit code."""
        handler = lambda signum, frame: self.stop()  # noqa: E731
        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            last_line = 0.0
            while not self._stop.is_set():
                self.step()
                if time.monotonic() - last_line >= 1.0:
                    last_line = time.monotonic()
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
            self.bridge.publish_state(self.state())
            self.bridge.publish_library(self.library.figures())
            self.bridge.start()
        self.watcher.start()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Clean stop within 2 s: offline published, MPD left playing."""
        self._stop.set()
        self.notifier.stopping()
        self.watcher.stop(1.0)
        if self.bridge is not None:
            self.bridge.stop(timeout=0.8)
        self.player.stop(timeout=0.5)
        log.info("stopped")

    def _status_line(self) -> None:
        s = self.state()
        line = (
            f"{s.status}; emotion {s.emotion or '-'}, mood {s.mood or '-'}, {s.fps or 0:.1f} fps, "
            f"MQTT {'up' if self.bridge and self.bridge.connected.is_set() else 'down' if self.bridge else 'off'}, "
            f"MPD {'up' if self.player.state().connected else 'down'}"
        )
        if line != self._last_status_line:
            self._last_status_line = line
            self.notifier.status(line)


def run(cfg: Config) -> int:
    return Daemon(cfg).run()
