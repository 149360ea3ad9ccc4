"""MPD control: the mood's music in MPD's queue, kept filled, across MPD restarts.

One thread owns the MPD connection. Everything else talks to it through thread-safe calls that never
block on MPD: the *intended* state (auto-DJ, the owner's mood choice, music on/off, volume, the stable
emotion) is plain state, applied on change and again after every reconnect; a skip waits in a queue
while MPD is down and is applied when it returns (or dropped once stale). Which tracks to queue is the
DJ's job (``dj.py``); this module only moves them into MPD and keeps the queue the DJ's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mpd

from moodbox.config import MusicConfig
from moodbox.music.dj import DJ
from moodbox.music.feedback import FeedbackStore
from moodbox.music.mood import MoodPlan
from moodbox.music.mpdlink import CONNECTION_ERRORS, PasswordError, Refusals, close, connect, where
from moodbox.music.owner import OwnerCommands
from moodbox.music.queue import MoodQueue
from moodbox.support.backoff import Backoff
from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 1.0  # longest wait between attempts: MPD back means the box's music under control within ~1 s
_MUSIC = {"play": "PLAYING", "pause": "PAUSED", "stop": "STOPPED"}


@dataclass(frozen=True)
class PlayerState:
    connected: bool = False
    mood: str | None = None  # the mood of the song playing; None when nobody knows (not ours, MPD down)
    source: str | None = None  # where that mood's music came from
    override: bool = False
    state: str = "unknown"  # play | pause | stop | unknown
    music: str | None = None  # PLAYING | PAUSED | STOPPED as MPD reports it; None while not known
    song: dict[str, str] | None = None  # artist, title, file
    volume: int | None = None  # None until MPD reported it (never a made-up 0)
    error: str | None = None


class MpdPlayer(OwnerCommands):
    def __init__(
        self,
        cfg: MusicConfig,
        feedback: FeedbackStore | None = None,
        rng: random.Random | None = None,
        poll_s: float = 0.25,
        on_volume: Callable[[int], None] | None = None,
    ) -> None:
        """``on_volume`` (called on the player thread): the owner changed the volume through another MPD
        client (Home Assistant's MPD media player, a phone app); it is now the owner's volume."""
        self.cfg = cfg
        self.on_volume = on_volume
        self.where = where(cfg.mpd)
        self.feedback = feedback
        self.dj = DJ(cfg, feedback, rng, where=f"MPD at {self.where}")
        self.queue = MoodQueue(cfg, self.dj)  # the player thread's alone
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reported = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mpd.MPDClient | None = None
        # intended state (any thread)
        # the plan to follow (MoodIntent's, handed over by the daemon); None: auto-DJ off
        self._plan: MoodPlan | None = MoodPlan(None, (cfg.fallback_mood,)) if cfg.auto_dj else None
        self._music: bool | None = None  # the owner's play/pause; None: leave MPD's as it is
        self._volume: int | None = None  # the owner's volume; applied once MPD is connected
        self._pending: set[str] = set()  # intended settings to (re)apply: "music", "volume", "following"
        self._following = False  # a group follower plays its leader's music: MPD is kept stopped
        self._actions: deque[tuple[float, str]] = deque()
        self._ever_connected = False
        self._refusals = Refusals(self.where)
        self._faults = Repeats(log)  # an unexpected error is logged once while it repeats
        self._state = PlayerState()

    # --- the interface for the daemon and MQTT (thread-safe, non-blocking; all work before start()) ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mpd-player", daemon=True)
        self._thread.start()

    def wait_reported(self, timeout: float) -> bool:
        """Wait until MPD's state has been read once (after the owner's volume and music were applied),
        so that the box's first published state carries them instead of null; False after ``timeout``
        (MPD unreachable: those stay null, which is true then)."""
        return self._reported.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stops controlling MPD; the music goes on playing."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def set_plan(self, plan: MoodPlan | None) -> None:
        """The mood plan to play (a new one acts per music.change; an owner's choice at once), or None to
        leave the music alone (auto-DJ off)."""
        if plan is not None and plan.override and plan.mood not in self.cfg.moods():
            raise ValueError(f"unknown mood {plan.mood!r}; known: {', '.join(self.cfg.moods())}")
        with self._lock:
            self._plan = plan
        self._wake.set()

    def set_music(self, on: bool) -> None:
        """The owner's play (ON) or pause (OFF): intended state, applied now and again after every
        reconnect; auto-DJ never starts playback while it is OFF."""
        with self._lock:
            self._music = bool(on)
            self._pending.add("music")
        self._wake.set()

    def pause(self) -> None:
        self.set_music(False)

    def resume(self) -> None:
        self.set_music(True)

    def set_volume(self, percent: int) -> None:
        """The owner's volume (capped at music.max_volume), applied once MPD is connected."""
        with self._lock:
            self._volume = max(0, min(int(percent), self.cfg.max_volume))
            self._pending.add("volume")
        self._wake.set()

    def set_following(self, on: bool) -> None:
        """A group follower: ON while the box's speaker plays its leader's music (through snapclient), so
        MPD is stopped once and left alone; OFF: the box's own music again, the owner's settings and the
        mood plan applied afresh."""
        with self._lock:
            if on == self._following:
                return
            self._following = on
            self._pending.update(("following", "music"))
        self._wake.set()

    def skip(self) -> None:
        with self._lock:
            if self._following:
                log.info("skip ignored: this box plays its group's music (skip on the group's leader)")
                return
            self._actions.append((time.monotonic(), "skip"))
            lost = self._ever_connected and not self._state.connected
        if lost:
            log.warning("MPD at %s is unreachable; the skip will be applied when it returns", self.where)
        self._wake.set()

    def state(self) -> PlayerState:
        with self._lock:
            return self._state

    @property
    def moods(self) -> list[str]:
        return self.cfg.moods()

    # --- the player thread: connection ------------------------------------------------------------------

    def _set(self, **kw: Any) -> None:
        with self._lock:
            self._state = replace(self._state, **kw)

    def _run(self) -> None:
        reconnect = Backoff(0.25, RECONNECT_MAX_S)
        while not self._stop.is_set():
            if self._client is None:
                try:
                    self._connect()
                    reconnect.reset()
                except PasswordError as exc:
                    if self._state.error != str(exc):
                        log.error("%s", exc)
                    self._set(connected=False, error=str(exc))
                    self._stop.wait(10.0)
                    continue
                except (*CONNECTION_ERRORS, mpd.CommandError) as exc:
                    msg = f"MPD at {self.where} is unreachable: {exc or type(exc).__name__}"
                    if self._state.error != msg:
                        log.warning("%s; retrying", msg)
                    self._set(connected=False, error=msg)
                    self._stop.wait(reconnect.next())
                    continue
            try:
                self._actions_due()
                self._tick()
                self._refusals.clear()
            except CONNECTION_ERRORS as exc:
                log.warning("lost MPD at %s: %s; reconnecting", self.where, exc or type(exc).__name__)
                self._drop()
                continue
            except mpd.CommandError as exc:
                self._refusals.refused(exc)
            except Exception as exc:  # a bug or an answer MPD never gave before: keep the box alive
                if not self._faults.active(repr(exc)):
                    self._faults.end_all()
                if self._faults.occurred(repr(exc)):
                    log.exception("player error with MPD at %s; reconnecting", self.where)
                self._drop()
                self._set(error=f"player error: {exc}")
                self._stop.wait(RECONNECT_MAX_S)
                continue
            self._faults.end_all()
            self._wake.wait(self.poll_s)
            self._wake.clear()
        self._drop()

    def _connect(self) -> None:
        c = connect(self.cfg.mpd)
        try:
            if self.cfg.crossfade_s:
                try:
                    c.crossfade(self.cfg.crossfade_s)
                except mpd.CommandError as exc:  # not worth going without music for
                    log.warning("MPD at %s refused crossfade %d s: %s", self.where, self.cfg.crossfade_s, exc)
            self.queue.connected(c, again=self._ever_connected)
        except BaseException:
            close(c)
            raise
        self._client = c
        with self._lock:
            self._ever_connected = True
            self._pending.update(("music", "volume", "following"))  # an MPD restarted resumes its saved state
        log.info("connected to MPD %s at %s", getattr(c, "mpd_version", "?"), self.where)
        self._set(connected=True, error=None)

    def _drop(self) -> None:
        if self._client is not None:
            close(self._client)
        self._client = None
        # nothing is known about an MPD we cannot reach
        self._set(connected=False, state="unknown", music=None, volume=None, song=None, mood=None, source=None)

    # --- the player thread: the queue -----------------------------------------------------------------

    def _intended(self) -> MoodPlan | None:
        with self._lock:
            return self._plan

    def _tick(self) -> None:
        c = self._client
        assert c is not None
        self._volume_due(c)
        if self._following_due(c):
            return
        self._music_due(c, before_queue=True)
        status = c.status()
        plan = self._intended()
        if plan is None:
            self.queue.release()
        elif self.queue.keep(c, plan, status, self._may_play()):
            status = c.status()
        if self._music_due(c, before_queue=False):
            status = c.status()
        self._report(c, plan, status)

    def _following_due(self, c: mpd.MPDClient) -> bool:
        """While the box follows its leader: MPD stopped once (the owner's play/pause waits until the box
        plays its own music again). True while following."""
        with self._lock:
            following, due = self._following, "following" in self._pending
            self._pending.discard("following")
            if due and not following:
                self._pending.add("music")
        if not following:
            return False
        status = c.status()
        if due and status.get("state") in ("play", "pause"):
            c.stop()
            log.info("MPD stopped: this box plays its group's music")
            status = c.status()
        self.queue.release()
        self._report(c, None, status)
        return True

    def _report(self, c: mpd.MPDClient, plan: MoodPlan | None, status: dict[str, str]) -> None:
        song_id = status.get("songid")
        known = self.queue.known(song_id)  # a song the DJ did not queue has no known mood
        song = None
        if song_id:
            cur = c.currentsong()
            song = {"artist": str(cur.get("artist", "")), "title": str(cur.get("title", "")), "file": str(cur.get("file", ""))}
        vol = status.get("volume")
        self._adopt_volume(int(vol) if vol not in (None, "-1") else None)
        state = status.get("state", "unknown")
        self._set(
            connected=True,
            state=state,
            music=_MUSIC.get(state),
            song=song,
            mood=known.mood if known else None,
            source=known.source if known else None,
            override=bool(plan and plan.override),
            volume=int(vol) if vol not in (None, "-1") else None,
            error=None,
        )
        self._reported.set()
