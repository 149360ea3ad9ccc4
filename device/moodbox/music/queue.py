"""The DJ's queue in MPD: applying a mood plan, keeping it filled, and knowing which songs are ours.

Runs on the player thread only (it holds no lock). MPD's song ids are the link between a song in the
queue and the mood it was queued for; they do not survive an MPD restart, so after a reconnect only
ids still naming the same file are trusted, and the track MPD resumed is checked against the mood.
"""

from __future__ import annotations

import logging

import mpd

from moodbox.config import MusicConfig
from moodbox.music.dj import DJ, Queued
from moodbox.music.mood import MoodPlan
from moodbox.music.mpdlink import MpdLibrary

log = logging.getLogger(__name__)

KEEP_PLAYED = 5  # played tracks left before the current one (for an MPD client's "previous")


class MoodQueue:
    def __init__(self, cfg: MusicConfig, dj: DJ) -> None:
        self.cfg = cfg
        self.dj = dj
        self.applied: MoodPlan | None = None
        self._ours: dict[str, Queued] = {}  # MPD song id -> the track the DJ queued there
        self._check_current = False  # after a reconnect: is the track MPD resumed one of the mood's?

    def known(self, song_id: str | None) -> Queued | None:
        """The track the DJ queued under this id (None: not ours, so its mood is not known)."""
        return self._ours.get(song_id) if song_id else None

    def connected(self, c: mpd.MPDClient, again: bool) -> None:
        """After (re)connecting: trust only ids still naming the same file, and apply the plan afresh."""
        now = {str(s.get("id")): s.get("file") for s in c.playlistinfo()}
        self._ours = {i: q for i, q in self._ours.items() if now.get(i) == q.track.file}
        self.applied = None
        self._check_current = again

    def release(self) -> None:
        """Auto-DJ off: the queue is the owner's; switching auto-DJ on again takes over afresh, politely."""
        self.applied = None
        self._check_current = False

    def keep(self, c: mpd.MPDClient, plan: MoodPlan, status: dict[str, str], may_play: bool) -> bool:
        """Make MPD's queue the plan's; True if MPD was changed (its status is stale then)."""
        if plan != self.applied:
            self._apply(c, plan, status, may_play)
            return True
        return self._refill(c, status, may_play)

    def _add(self, c: mpd.MPDClient, items: list[Queued]) -> int:
        added = 0
        for q in items:
            try:
                song_id = c.addid(q.track.file)
            except mpd.CommandError as exc:  # a playlist naming a file MPD's database no longer has
                self.dj.unplayable(q.track.file, str(exc))
                continue
            self._ours[str(song_id)] = q
            added += 1
        return added

    def _is_mood_track(self, c: mpd.MPDClient, plan: MoodPlan, status: dict[str, str]) -> bool:
        """Whether the current track belongs to the plan; one the DJ did not queue is looked up once."""
        song_id = status.get("songid", "")
        known = self._ours.get(song_id)
        if known is None:
            found = self.dj.mood_of(MpdLibrary(c), c.currentsong().get("file", ""), plan)
            if found is None:
                return False
            self._ours[song_id] = known = found
        return known.mood in plan.stages

    def _apply(self, c: mpd.MPDClient, plan: MoodPlan, status: dict[str, str], may_play: bool) -> None:
        """Queue the plan's music. An owner's mood choice cuts to it at once; an emotion-driven change
        waits for the end of the track unless music.change is immediate; going back to auto never cuts.
        After a reconnect, a track that is not the mood's own (MPD resumed it from its saved state) is
        cut at once."""
        state = status.get("state")
        current = state in ("play", "pause") and "song" in status
        check, self._check_current = self._check_current, False
        fits = current and self._is_mood_track(c, plan, status)
        if plan.override or check:
            cut = not fits
        else:
            cut = self.cfg.change == "immediate" and not (self.applied is not None and self.applied.override)
        log.info(
            "music: %s%s (%s)%s",
            " then ".join(plan.stages),
            " [override]" if plan.override else "",
            f"emotion {plan.emotion}" if plan.emotion else "no emotion yet" if not plan.override else "owner's choice",
            "; replacing the track MPD resumed" if check and current and cut else "",
        )
        lib = MpdLibrary(c)
        if current:
            pos, length = int(status["song"]), int(status.get("playlistlength", 0))
            if pos + 1 < length:
                c.delete((pos + 1, length))
            if pos > 0:
                c.delete((0, pos))  # played tracks: keep the queue short and ours
            playing_id = status.get("songid", "")
            self._ours = {i: q for i, q in self._ours.items() if i == playing_id}
            if self._add(c, self.dj.queue(lib, plan, self.cfg.queue_length)) and cut:
                # the playing track is now first: go to the new mood's first track; seek keeps a pause paused
                c.play(1) if state == "play" else c.seek(1, 0)
        else:
            c.clear()
            self._ours.clear()
            if self._add(c, self.dj.queue(lib, plan, self.cfg.queue_length)) and may_play:
                c.play(0)
        self.applied = plan

    def _refill(self, c: mpd.MPDClient, status: dict[str, str], may_play: bool) -> bool:
        """Music never runs out while auto-DJ is on: top up with the plan's last stage. True if it acted."""
        assert self.applied is not None
        length = int(status.get("playlistlength", 0))
        has_song = "song" in status
        if not has_song and length and not may_play:
            return False  # stopped with music OFF: a queue is ready where play will start; nothing runs out
        pos = int(status["song"]) if has_song else length  # stopped with no current song: all was played
        remaining = length - pos - 1
        if remaining >= max(1, self.cfg.queue_length // 3):
            return False
        if pos > KEEP_PLAYED:
            c.delete((0, pos - KEEP_PLAYED))  # keep the queue short
            length, pos = length - (pos - KEEP_PLAYED), KEEP_PLAYED
        queue = c.playlistinfo()
        ids = {str(s.get("id")) for s in queue}
        self._ours = {i: q for i, q in self._ours.items() if i in ids}
        upcoming = [str(s.get("file")) for s in queue[pos:]]
        self._add(c, self.dj.refill(MpdLibrary(c), self.applied, self.cfg.queue_length - max(remaining, 0), upcoming))
        if not has_song and may_play:
            # the queue ran out (not stopped by someone mid-track): go on with what was just added
            if int(c.status().get("playlistlength", 0)) > length:
                c.play(length)
        return True
