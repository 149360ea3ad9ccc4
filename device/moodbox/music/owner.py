"""The owner's commands as the player thread applies them to MPD: skip, play/pause, volume, and a volume
someone set through another MPD client taken as the owner's. Part of :class:`~moodbox.music.player.MpdPlayer`
(its thread alone runs these), kept apart so that each file holds one job."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import mpd

from moodbox.config import MusicConfig
from moodbox.music.feedback import FeedbackStore
from moodbox.music.mood import MoodPlan
from moodbox.music.queue import MoodQueue

log = logging.getLogger("moodbox.music.player")  # the player's log, as owners read it

ACTION_MAX_AGE_S = 60.0  # a skip older than this is not applied after an outage


class OwnerCommands:
    """The player's intended state, applied once after each change and after each (re)connect."""

    cfg: MusicConfig
    where: str
    feedback: FeedbackStore | None
    queue: MoodQueue
    on_volume: Callable[[int], None] | None
    _lock: threading.Lock
    _client: mpd.MPDClient | None
    _actions: deque[tuple[float, str]]
    _pending: set[str]
    _music: bool | None
    _volume: int | None
    _plan: MoodPlan | None

    def _actions_due(self) -> None:
        c = self._client
        assert c is not None
        while True:
            with self._lock:
                if not self._actions:
                    return
                t, name = self._actions[0]
            if time.monotonic() - t > ACTION_MAX_AGE_S:
                log.warning("dropped '%s': MPD was unreachable for more than %.0f s", name, ACTION_MAX_AGE_S)
            else:
                try:
                    self._skip(c)
                except mpd.CommandError as exc:
                    # refused, not lost: retrying would only be refused again and hold up what follows
                    log.warning("MPD at %s refused %s (%s); dropped", self.where, name, exc)
            with self._lock:
                self._actions.popleft()  # only once applied or refused: a connection error keeps it queued

    def _skip(self, c: mpd.MPDClient) -> None:
        status = c.status()
        known = self.queue.known(status.get("songid"))
        if known is not None and self.feedback is not None:
            elapsed = float(status.get("elapsed", 0.0))
            if elapsed <= self.cfg.skip_feedback_s:
                n = self.feedback.record_skip(known.mood, known.track.file)
                log.info("skip after %.0f s: %s now skipped %d time(s) for mood %s", elapsed, known.track.file, n, known.mood)
        pos, length = int(status.get("song", -1)), int(status.get("playlistlength", 0))
        if status.get("state") == "pause" and 0 <= pos < length - 1:
            c.seek(pos + 1, 0)  # next would start playing: music the owner switched OFF stays paused
        else:
            c.next()

    def _volume_due(self, c: mpd.MPDClient) -> None:
        """The owner's volume, once after each change and after each (re)connect."""
        with self._lock:
            due, volume = "volume" in self._pending, self._volume
            self._pending.discard("volume")
        if due and volume is not None:
            c.setvol(volume)

    def _music_due(self, c: mpd.MPDClient, before_queue: bool) -> bool:
        """The owner's music on/off, once after each change and after each (re)connect. A pause acts
        before the queue is touched (no note of a new track), a resume after it (the mood's track).
        True if MPD may have changed."""
        with self._lock:
            if "music" not in self._pending or (before_queue and self._music is not False):
                return False
            self._pending.discard("music")
            music, auto_dj = self._music, self._plan is not None
        if music is None and not auto_dj:
            return False  # nobody asked for anything: MPD's own state is the owner's
        status = c.status()
        state = status.get("state")
        if music is False:
            if state == "play":
                c.pause(1)
        elif state == "pause":
            # MPD comes back paused after a power cut (the role's restore_paused): the box resumes it
            # unless the owner switched the music OFF; a stopped MPD is started by the queue keeper
            c.pause(0)
        elif music and state == "stop" and int(status.get("playlistlength", 0)) > 0:
            c.play()
        return True

    def _may_play(self) -> bool:
        """Auto-DJ starts playback only while the owner has not switched the music OFF."""
        with self._lock:
            return self._music is not False

    def _adopt_volume(self, reported: int | None) -> None:
        """MPD's volume moved away from the owner's while none of ours was in flight: another client set it
        (the owner, through Home Assistant's MPD media player or a phone app). That is the owner's volume
        now, so a restart does not put the old one back. A step of 1 is a hardware mixer's rounding."""
        with self._lock:
            mine = self._volume
            if reported is None or mine is None or "volume" in self._pending or abs(reported - mine) <= 1:
                return
            self._volume = min(reported, self.cfg.max_volume)
            adopted = self._volume
        log.info("volume %d%% set through another MPD client: kept as the owner's volume", reported)
        if self.on_volume is not None:
            self.on_volume(adopted)
