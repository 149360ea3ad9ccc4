"""MPD control (python-mpd2): the mood's music in MPD's queue, kept filled, across MPD restarts.

One thread owns the MPD connection. Everything else talks to it through thread-safe calls that never
block on MPD: the *intended* state (auto-DJ, mood override, the stable emotion) is plain state and is
re-applied after every reconnect; one-off actions (skip, pause, volume) wait in a queue while MPD is
down and are applied when it returns, or dropped with a warning if they have grown stale.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import mpd

from moodbox.config import MusicConfig
from moodbox.feedback import FeedbackStore
from moodbox.mood import MoodPlan, MoodPolicy, MoodState, Preferences, Track, choose

log = logging.getLogger(__name__)

ACTION_MAX_AGE_S = 60.0  # a skip or pause older than this is not applied after an outage
_MUSIC = {"play": "PLAYING", "pause": "PAUSED", "stop": "STOPPED"}
_CONNECTION_ERRORS = (mpd.ConnectionError, mpd.ProtocolError, OSError, EOFError)


class PasswordError(RuntimeError):
    pass


@dataclass(frozen=True)
class PlayerState:
    connected: bool = False
    auto_dj: bool = True
    mood: str | None = None  # the mood of the song playing (or about to)
    source: str | None = None  # where that mood's music came from
    override: bool = False
    state: str = "unknown"  # play | pause | stop | unknown
    music: str | None = None  # PLAYING | PAUSED | STOPPED as MPD reports it; None while not known
    song: dict[str, str] | None = None  # artist, title, file
    volume: int | None = None  # None until MPD reported it (never a made-up 0)
    error: str | None = None

    def mood_state(self) -> MoodState:
        return MoodState(self.mood, self.source, self.override)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def query_expression(query: dict[str, str]) -> str:
    """MPD filter syntax: every tag must match its regular expression (case-insensitive)."""
    parts = [f"({tag} =~ {_quote('(?i)' + rx)})" for tag, rx in query.items()]
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


class MpdPlayer:
    def __init__(
        self,
        cfg: MusicConfig,
        feedback: FeedbackStore | None = None,
        rng: random.Random | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.cfg = cfg
        self.where = f"{cfg.mpd.host}:{cfg.mpd.port}"
        self.policy = MoodPolicy(cfg.strategy, cfg.strategies, cfg.fallback_mood)
        p = cfg.preferences
        self.prefs = Preferences(tuple(p.prefer_artists), tuple(p.exclude_artists), tuple(p.prefer_genres),
                                 tuple(p.exclude_genres), p.language, p.language_tag)
        self.feedback = feedback
        self.rng = rng or random.Random()
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mpd.MPDClient | None = None
        # intended state (any thread)
        self._auto_dj = cfg.auto_dj
        self._emotion: str | None = None
        self._override: str | None = None
        self._music: bool | None = None  # the owner's play/pause; None: leave MPD's as it is
        self._volume: int | None = None  # the owner's volume; applied once MPD is connected
        self._pending: set[str] = set()  # intended settings to (re)apply: "music", "volume"
        self._actions: deque[tuple[float, str, Any]] = deque()
        self._ever_connected = False
        # applied state (player thread only)
        self._applied: MoodPlan | None = None
        self._song_moods: dict[str, tuple[str, str]] = {}  # MPD song id -> (mood, source)
        self._warned: set[str] = set()
        self._state = PlayerState(auto_dj=self._auto_dj)

    # --- the interface for the daemon and MQTT (thread-safe, non-blocking) -------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mpd-player", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops controlling MPD; the music goes on playing."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def set_emotion(self, emotion: str | None) -> None:
        """The stable emotion; None (nobody in view) keeps the music as it is."""
        if emotion is None:
            return
        with self._lock:
            self._emotion = emotion
        self._wake.set()

    def set_override(self, mood: str | None) -> None:
        """A mood chosen by the owner, or None to follow the emotion again."""
        if mood is not None and mood not in self.cfg.moods():
            raise ValueError(f"unknown mood {mood!r}; known: {', '.join(self.cfg.moods())}")
        with self._lock:
            self._override = mood
        self._wake.set()

    def set_auto_dj(self, on: bool) -> None:
        with self._lock:
            self._auto_dj = on
            self._state = replace(self._state, auto_dj=on)
        self._wake.set()

    def set_music(self, on: bool) -> None:
        """The owner's play (ON) or pause (OFF): intended state, applied now and again after every
        reconnect; auto-DJ never starts playback while it is OFF."""
        with self._lock:
            self._music = bool(on)
            self._pending.add("music")
        self._wake.set()

    def skip(self) -> None:
        self._action("skip")

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

    def state(self) -> PlayerState:
        with self._lock:
            return self._state

    @property
    def override(self) -> str | None:
        """The owner's mood choice (intended, shown even while MPD is unreachable)."""
        with self._lock:
            return self._override

    @property
    def moods(self) -> list[str]:
        return self.cfg.moods()

    def _action(self, name: str, arg: Any = None) -> None:
        with self._lock:
            self._actions.append((time.monotonic(), name, arg))
            lost = self._ever_connected and not self._state.connected
        if lost:
            log.warning("MPD at %s is unreachable; %s will be applied when it returns", self.where, name)
        self._wake.set()

    # --- the player thread ------------------------------------------------------------------------------

    def _set(self, **kw: Any) -> None:
        with self._lock:
            self._state = replace(self._state, **kw)

    def _run(self) -> None:
        delay = 0.25
        while not self._stop.is_set():
            if self._client is None:
                try:
                    self._connect()
                    delay = 0.25
                except PasswordError as exc:
                    self._set(connected=False, error=str(exc))
                    log.error("%s", exc)
                    self._stop.wait(10.0)
                    continue
                except _CONNECTION_ERRORS as exc:
                    msg = f"MPD at {self.where} is unreachable: {exc or type(exc).__name__}"
                    if self._state.error != msg:
                        log.warning("%s; retrying", msg)
                    self._set(connected=False, error=msg)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 2.0)
                    continue
            try:
                self._actions_due()
                self._tick()
            except _CONNECTION_ERRORS as exc:
                log.warning("lost MPD at %s: %s; reconnecting", self.where, exc or type(exc).__name__)
                self._drop()
                continue
            except mpd.CommandError as exc:
                log.warning("MPD at %s refused a command: %s", self.where, exc)
            self._wake.wait(self.poll_s)
            self._wake.clear()
        self._drop()

    def _connect(self) -> None:
        c = mpd.MPDClient()
        c.timeout = self.cfg.mpd.timeout_s
        c.idletimeout = None
        c.connect(self.cfg.mpd.host, self.cfg.mpd.port)
        try:
            if self.cfg.mpd.password:
                try:
                    c.password(self.cfg.mpd.password)
                except mpd.CommandError as exc:
                    raise PasswordError(
                        f"MPD at {self.where} rejected the password (music.mpd.password / MOODBOX_MPD_PASSWORD): {exc}"
                    ) from None
            try:
                c.status()
            except mpd.CommandError as exc:
                if "permission" in str(exc):
                    raise PasswordError(
                        f"MPD at {self.where} requires a password: set music.mpd.password or MOODBOX_MPD_PASSWORD"
                    ) from None
                raise
            if self.cfg.crossfade_s:
                c.crossfade(self.cfg.crossfade_s)
        except BaseException:
            self._close(c)
            raise
        self._client = c
        self._applied = None  # song ids are gone after an MPD restart: apply the intended mood again
        self._song_moods.clear()
        with self._lock:
            self._ever_connected = True
            self._pending.update(k for k, v in (("music", self._music), ("volume", self._volume)) if v is not None)
        log.info("connected to MPD %s at %s", getattr(c, "mpd_version", "?"), self.where)
        self._set(connected=True, error=None)

    @staticmethod
    def _close(c: mpd.MPDClient) -> None:
        try:
            c.close()
        except Exception:  # already gone
            pass
        try:
            c.disconnect()
        except Exception:
            pass

    def _drop(self) -> None:
        if self._client is not None:
            self._close(self._client)
        self._client = None
        # nothing is known about an MPD we cannot reach
        self._set(connected=False, state="unknown", music=None, volume=None, song=None, mood=None, source=None)

    def _actions_due(self) -> None:
        c = self._client
        assert c is not None
        while True:
            with self._lock:
                if not self._actions:
                    return
                t, name, arg = self._actions[0]
            if time.monotonic() - t > ACTION_MAX_AGE_S:
                log.warning("dropped '%s': MPD was unreachable for more than %.0f s", name, ACTION_MAX_AGE_S)
            elif name == "skip":
                self._skip(c)
            with self._lock:
                self._actions.popleft()  # only once applied: a connection error keeps it queued

    def _skip(self, c: mpd.MPDClient) -> None:
        status = c.status()
        state = status.get("state")
        song_id = status.get("songid")
        if song_id in self._song_moods and self.feedback is not None:
            elapsed = float(status.get("elapsed", 0.0))
            if elapsed <= self.cfg.skip_feedback_s:
                mood = self._song_moods[song_id][0]
                file = c.currentsong().get("file", "")
                n = self.feedback.record_skip(mood, file)
                log.info("skip after %.0f s: %s now skipped %d time(s) for mood %s", elapsed, file, n, mood)
        pos, length = int(status.get("song", -1)), int(status.get("playlistlength", 0))
        if state == "pause" and 0 <= pos < length - 1:
            c.seek(pos + 1, 0)  # next would start playing: music the owner switched OFF stays paused
        else:
            c.next()

    def _may_play(self) -> bool:
        """Auto-DJ starts playback only while the owner has not switched the music OFF."""
        with self._lock:
            return self._music is not False

    def _settings_due(self, c: mpd.MPDClient) -> None:
        """The owner's music on/off and volume, once after each change and after each (re)connect."""
        with self._lock:
            pending, music, volume = set(self._pending), self._music, self._volume
            self._pending.clear()
        if "volume" in pending and volume is not None:
            c.setvol(volume)
        if "music" in pending and music is not None:
            status = c.status()
            state = status.get("state")
            if not music and state == "play":
                c.pause(1)
            elif music and state == "pause":
                c.pause(0)
            elif music and state == "stop" and int(status.get("playlistlength", 0)) > 0:
                c.play()

    def _intended(self) -> MoodPlan | None:
        with self._lock:
            if not self._auto_dj:
                return None
            if self._override:
                return self.policy.override(self._override)
            return self.policy.plan(self._emotion)

    def _tick(self) -> None:
        c = self._client
        assert c is not None
        status = c.status()
        plan = self._intended()
        if plan is None:
            self._applied = None  # auto-DJ off: the owner's queue; switching it on again takes over afresh
        elif plan != self._applied:
            self._apply(c, plan, status)
            status = c.status()
        else:
            self._refill(c, status)
        self._settings_due(c)
        status = c.status()
        song_id = status.get("songid")
        # the mood of the song really playing; a song we did not queue has no known mood
        mood, source = self._song_moods.get(song_id, (None, None)) if song_id else (None, None)
        song = None
        if song_id:
            cur = c.currentsong()
            song = {"artist": str(cur.get("artist", "")), "title": str(cur.get("title", "")), "file": str(cur.get("file", ""))}
        vol = status.get("volume")
        state = status.get("state", "unknown")
        self._set(
            connected=True, state=state, music=_MUSIC.get(state), song=song, mood=mood, source=source,
            override=bool(plan and plan.override), volume=int(vol) if vol not in (None, "-1") else None, error=None,
        )

    # --- queue building ---

    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _candidates(self, c: mpd.MPDClient, mood: str) -> tuple[list[Track], str]:
        """The mood's tracks from its first usable choice: playlist, then tag query."""
        if mood in self.cfg.playlists:
            name = self.cfg.playlists[mood]
            try:
                tracks = [Track.from_mpd(i) for i in c.listplaylistinfo(name) if "file" in i]
            except mpd.CommandError as exc:
                self._warn_once(f"pl:{mood}", "mood %s: playlist %r cannot be used (%s); trying its tag query", mood, name, exc)
                tracks = []
            if tracks:
                return tracks, f"playlist {name}"
            self._warn_once(f"ple:{mood}", "mood %s: playlist %r is missing or empty; trying its tag query", mood, name)
        if mood in self.cfg.queries:
            q = self.cfg.queries[mood]
            tracks = [Track.from_mpd(i) for i in c.find(query_expression(q)) if "file" in i]
            label = "query " + ", ".join(f"{k}={v}" for k, v in q.items())
            if tracks:
                return tracks, label
            self._warn_once(f"q:{mood}", "mood %s: no track matches %s", mood, label)
        return [], ""

    def _pick(self, c: mpd.MPDClient, mood: str, count: int, avoid: list[str]) -> tuple[list[Track], str, str]:
        """(tracks, the mood they really are, source); falls back to the fallback mood, then the library."""
        skips = self.feedback.skips(mood) if self.feedback else {}
        tracks, source = self._candidates(c, mood)
        picked = choose(tracks, count, self.prefs, skips, self.rng, avoid) if tracks else []
        if picked:
            return picked, mood, source
        if tracks:
            self._warn_once(f"pref:{mood}", "mood %s: every track of %s is excluded by music.preferences", mood, source)
        fb = self.cfg.fallback_mood
        if mood != fb:
            self._warn_once(f"fb:{mood}", "mood %s has nothing to play; playing the fallback mood %s instead", mood, fb)
            picked, _, fb_source = self._pick(c, fb, count, avoid)
            return picked, mood, f"fallback {fb}: {fb_source}"
        library = [Track.from_mpd(i) for i in c.listallinfo() if "file" in i]
        picked = choose(library, count, self.prefs, skips, self.rng, avoid)
        if picked:
            self._warn_once("lib", "the fallback mood %s has nothing to play either; playing from the whole library", fb)
            return picked, mood, "whole library"
        self._warn_once("empty", "MPD's library at %s has nothing playable: the music stops", self.where)
        return [], mood, ""

    def _queue(self, c: mpd.MPDClient, plan: MoodPlan, total: int, stage_start: int = 0) -> int:
        added = 0
        recent: list[str] = []
        stages = plan.stages[stage_start:] or plan.stages[-1:]
        for i, mood in enumerate(stages):
            last = i == len(stages) - 1
            n = max(1, total - added) if last else min(self.cfg.stage_tracks, total)
            tracks, real_mood, source = self._pick(c, mood, n, recent)
            for t in tracks:
                song_id = c.addid(t.file)
                self._song_moods[str(song_id)] = (real_mood, source)
                recent.append(t.file)
                added += 1
        return added

    def _apply(self, c: mpd.MPDClient, plan: MoodPlan, status: dict[str, str]) -> None:
        """Queue the plan's music. An owner's mood choice cuts to it at once; an emotion-driven change
        waits for the end of the track unless music.change is immediate; going back to auto never cuts."""
        state = status.get("state")
        playing = state in ("play", "pause") and "song" in status
        current_mood = self._song_moods.get(status.get("songid", ""), (None, None))[0]
        if plan.override:
            cut = current_mood not in plan.stages
        else:
            cut = self.cfg.change == "immediate" and not (self._applied is not None and self._applied.override)
        log.info(
            "music: %s%s (%s)", " then ".join(plan.stages), " [override]" if plan.override else "",
            f"emotion {plan.emotion}" if plan.emotion else "no emotion yet" if not plan.override else "owner's choice",
        )
        if playing:
            pos, length = int(status["song"]), int(status.get("playlistlength", 0))
            if pos + 1 < length:
                c.delete((pos + 1, length))
            if pos > 0:
                c.delete((0, pos))  # played tracks: keep the queue short and ours
            if self._queue(c, plan, self.cfg.queue_length) and cut:
                # the playing track is now first: go to the new mood's first track; seek keeps a pause paused
                c.play(1) if state == "play" else c.seek(1, 0)
        else:
            c.clear()
            self._song_moods.clear()
            if self._queue(c, plan, self.cfg.queue_length) and self._may_play():
                c.play(0)
        self._applied = plan

    def _refill(self, c: mpd.MPDClient, status: dict[str, str]) -> None:
        """Music never runs out while auto-DJ is on: top up with the plan's last stage."""
        assert self._applied is not None
        length = int(status.get("playlistlength", 0))
        if "song" not in status and length and not self._may_play():
            return  # stopped with music OFF: a queue is ready where play will start; nothing runs out
        pos = int(status["song"]) if "song" in status else length
        remaining = length - pos - 1
        if remaining < max(1, self.cfg.queue_length // 3):
            plan = self._applied
            self._queue(c, MoodPlan(plan.emotion, plan.stages[-1:], plan.override), self.cfg.queue_length - max(remaining, 0))
        if status.get("state") == "stop" and "song" not in status and self._may_play():
            # the queue ran out (not stopped by someone mid-track): go on with what was just added
            c.play(min(pos, int(c.status().get("playlistlength", 1)) - 1))
