"""The DJ: which tracks to queue for a mood, from a small library interface, free of MPD.

A mood's music comes from its first usable choice: the owner's stored playlist for it; else the tracks
the library scan heard to fit the mood (``analysis.py``), together with the tracks nobody analysed yet
that match the mood's tag query (a track that was analysed is judged by its sound, not its genre tag);
a mood with none of these plays the fallback mood's music, and a fallback with nothing plays from the
whole library.
The owner's preferences and the skip feedback weigh every pick (``mood.choose``). Each problem with the
owner's music (a missing playlist, a query that matches nothing) is logged once, not on every refill.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from moodbox.config import MusicConfig
from moodbox.music.analysis import fitting
from moodbox.music.feedback import FeedbackStore
from moodbox.music.mood import MoodPlan, Preferences, Track, choose
from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)


class PlaylistUnavailable(Exception):
    """The library has no usable playlist of that name; the message says why."""


class StickersUnavailable(Exception):
    """The library keeps no stickers (MPD without a sticker_file); the message says why."""


class Library(Protocol):
    """What the DJ needs to know about the music (MPD's database, or a fake in tests)."""

    def playlist(self, name: str) -> list[Track]:
        """The stored playlist's tracks; raises PlaylistUnavailable when there is none."""
        ...

    def find(self, query: Mapping[str, str]) -> list[Track]:
        """Tracks whose every tag matches its regular expression (case-insensitive)."""
        ...

    def everything(self) -> list[Track]:
        """Every track in the library."""
        ...

    def analysed(self) -> dict[str, dict[str, float]]:
        """file -> its mood scores, for every track the library scan analysed (MPD's stickers); raises
        StickersUnavailable when the library keeps none."""
        ...


ANALYSED_TTL_S = 60.0  # the scan runs at night; re-reading every sticker on each refill is waste


@dataclass(frozen=True)
class Queued:
    """One track to queue, with the mood it is played for and where it came from."""

    track: Track
    mood: str
    source: str  # "playlist mood_happy", "query genre=Pop|Dance", "fallback neutral: ...", "whole library"


def preferences(cfg: MusicConfig) -> Preferences:
    p = cfg.preferences
    return Preferences(
        tuple(p.prefer_artists),
        tuple(p.exclude_artists),
        tuple(p.prefer_genres),
        tuple(p.exclude_genres),
        p.language,
        p.language_tag,
    )


def query_label(query: Mapping[str, str]) -> str:
    return "query " + ", ".join(f"{k}={v}" for k, v in query.items())


class DJ:
    def __init__(
        self,
        cfg: MusicConfig,
        feedback: FeedbackStore | None = None,
        rng: random.Random | None = None,
        where: str = "the library",
    ) -> None:
        self.cfg = cfg
        self.prefs = preferences(cfg)
        self.feedback = feedback
        self.rng = rng or random.Random()
        self.where = where  # names the library in messages ("MPD at host:port")
        self._warned = Repeats(log)  # each once, ever
        self._unplayable: set[str] = set()
        # (when read, file -> mood scores, file -> track) of the analysed tracks
        self._analysed: tuple[float, dict[str, dict[str, float]], dict[str, Track]] | None = None

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if self._warned.occurred(key):
            log.warning(msg, *args)

    def unplayable(self, file: str, why: str) -> None:
        """A track the player could not queue (listed by a playlist, gone from the library): never picked again."""
        if file not in self._unplayable:
            self._unplayable.add(file)
            log.warning("%s cannot queue %r (%s); left out from now on", self.where, file, why)

    def analysed(self, lib: Library) -> tuple[dict[str, dict[str, float]], dict[str, Track]]:
        """The library's analysed tracks (their mood scores, and the tracks), re-read at most once a minute."""
        now = time.monotonic()
        if self._analysed is None or now - self._analysed[0] > ANALYSED_TTL_S:
            try:
                scores = lib.analysed()
            except StickersUnavailable as exc:
                self._warn_once(
                    "stickers", "%s keeps no stickers (%s): moods heard by the library scan are not used", self.where, exc
                )
                scores = {}
            tracks = {t.file: t for t in lib.everything() if t.file in scores} if scores else {}
            self._analysed = (now, {f: m for f, m in scores.items() if f in tracks}, tracks)
        return self._analysed[1], self._analysed[2]

    def candidates(self, lib: Library, mood: str) -> tuple[list[Track], str]:
        """The mood's tracks from its first usable choice, and where they came from."""
        tracks, source, _ = self._candidates(lib, mood)
        return tracks, source

    def _candidates(self, lib: Library, mood: str) -> tuple[list[Track], str, frozenset[str]]:
        """As ``candidates``, with the files heard to fit (the DJ prefers those)."""
        if mood in self.cfg.playlists:
            name = self.cfg.playlists[mood]
            try:
                tracks = self._usable(lib.playlist(name))
                why = "is empty"
            except PlaylistUnavailable as exc:
                tracks, why = [], f"cannot be used ({exc})"
            if tracks:
                return tracks, f"playlist {name}", frozenset()
            self._warn_once(f"pl:{mood}", "mood %s: playlist %r %s; trying its tag query", mood, name, why)
        scores, analysed = self.analysed(lib)
        fits = fitting(scores, mood, self.cfg.analysis.fit) if mood in self.cfg.analysis.moods else []
        heard = self._usable([analysed[f] for f in fits])
        query = self.cfg.queries.get(mood)
        unheard = self._usable([t for t in lib.find(query) if t.file not in scores]) if query is not None else []
        if heard or unheard:
            parts = ([f"analysed {len(heard)}"] if heard else []) + ([query_label(query)] if unheard and query else [])
            return heard + unheard, " + ".join(parts), frozenset(t.file for t in heard)
        if query is not None:
            self._warn_once(f"q:{mood}", "mood %s: no analysed track fits it and no track matches %s", mood, query_label(query))
        return [], "", frozenset()

    def _usable(self, tracks: Sequence[Track]) -> list[Track]:
        return [t for t in tracks if t.file and t.file not in self._unplayable]

    def pick(self, lib: Library, mood: str, count: int, avoid: Sequence[str] = ()) -> list[Queued]:
        """``count`` tracks for the mood; falls back to the fallback mood, then to the whole library."""
        skips = self.feedback.skips(mood) if self.feedback else {}
        tracks, source, heard = self._candidates(lib, mood)
        picked = choose(tracks, count, self.prefs, skips, self.rng, avoid, heard) if tracks else []
        if picked:
            return [Queued(t, mood, source) for t in picked]
        if tracks:
            self._warn_once(f"pref:{mood}", "mood %s: every track of %s is excluded by music.preferences", mood, source)
        fb = self.cfg.fallback_mood
        if mood != fb:
            self._warn_once(f"fb:{mood}", "mood %s has nothing to play; playing the fallback mood %s instead", mood, fb)
            return [Queued(q.track, mood, f"fallback {fb}: {q.source}") for q in self.pick(lib, fb, count, avoid)]
        picked = choose(self._usable(lib.everything()), count, self.prefs, skips, self.rng, avoid)
        if picked:
            self._warn_once("lib", "the fallback mood %s has nothing to play either; playing from the whole library", fb)
            return [Queued(t, mood, "whole library") for t in picked]
        self._warn_once("empty", "%s has nothing playable: the music stops", self.where)
        return []

    def queue(self, lib: Library, plan: MoodPlan, total: int, avoid: Sequence[str] = ()) -> list[Queued]:
        """``total`` tracks for the plan: ``stage_tracks`` of each stage, then its last stage."""
        out: list[Queued] = []
        recent = list(avoid)
        for i, mood in enumerate(plan.stages):
            last = i == len(plan.stages) - 1
            n = max(1, total - len(out)) if last else min(self.cfg.stage_tracks, total)
            picked = self.pick(lib, mood, n, recent)
            out.extend(picked)
            recent.extend(q.track.file for q in picked)
        return out

    def refill(self, lib: Library, plan: MoodPlan, count: int, avoid: Sequence[str] = ()) -> list[Queued]:
        """More of the plan's last stage (the stage that repeats), avoiding what is queued already."""
        return self.pick(lib, plan.final_mood, count, avoid)

    def mood_of(self, lib: Library, file: str, plan: MoodPlan) -> Queued | None:
        """Whether a track nobody recorded (MPD resumed it, the owner queued it) is one of the plan's
        moods' own tracks: then it may stay and its mood is known."""
        for mood in plan.stages:
            tracks, source = self.candidates(lib, mood)
            for t in tracks:
                if t.file == file:
                    return Queued(t, mood, source)
        return None
