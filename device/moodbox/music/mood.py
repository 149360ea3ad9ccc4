"""Emotion -> mood -> tracks: the music policy, free of MPD and of vision.

``match`` plays music that mirrors the stable emotion, ``uplift`` music that counteracts it, as the
published emotion-based recommenders do. A strategy maps an emotion to moods in *stages* (sad -> gentle,
then happy): the queue holds ``stage_tracks`` of each stage before the next, and the last stage repeats.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moodbox.config import MusicConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MoodPlan:
    """What the player should play: the emotion it answers, and the moods in their stages."""

    emotion: str | None
    stages: tuple[str, ...]
    override: bool = False

    @property
    def mood(self) -> str:
        return self.stages[0]

    @property
    def final_mood(self) -> str:
        return self.stages[-1]


@dataclass(frozen=True)
class Track:
    file: str
    artist: str = ""
    title: str = ""
    genre: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mpd(cls, info: Mapping[str, object]) -> Track:
        def one(v: object) -> str:
            return str(v[0]) if isinstance(v, list) and v else str(v or "")

        tags = {k.lower(): one(v) for k, v in info.items()}
        return cls(
            file=tags.get("file", ""),
            artist=tags.get("artist", ""),
            title=tags.get("title", ""),
            genre=tags.get("genre", ""),
            tags=tags,
        )


class MoodPolicy:
    def __init__(self, strategy: str, strategies: Mapping[str, Mapping[str, Sequence[str]]], fallback: str = "neutral") -> None:
        if strategy not in strategies:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.mapping = {e: tuple(m) for e, m in strategies[strategy].items()}
        self.fallback = fallback

    @classmethod
    def from_config(cls, cfg: MusicConfig, labels: Sequence[str]) -> MoodPolicy:
        """The configured strategy for a model with these labels (the config was checked against them; an
        emotion without moods would get the fallback mood)."""
        missing = [e for e in labels if e not in cfg.strategies[cfg.strategy]]
        if missing:
            log.warning(
                "strategy %s has no moods for %s: the fallback mood %s plays for them",
                cfg.strategy,
                ", ".join(missing),
                cfg.fallback_mood,
            )
        return cls(cfg.strategy, cfg.strategies, cfg.fallback_mood)

    def plan(self, emotion: str | None) -> MoodPlan:
        """The plan for a stable emotion; None (nobody seen yet) gives the fallback mood."""
        if emotion is None:
            return MoodPlan(None, (self.fallback,))
        return MoodPlan(emotion, self.mapping.get(emotion, (self.fallback,)))

    @staticmethod
    def override(mood: str) -> MoodPlan:
        return MoodPlan(None, (mood,), override=True)


class MoodIntent:
    """What the music should follow, as one plan: the stable emotion through the policy, unless the owner
    chose a mood or switched auto-DJ off (then None: the music is left alone). Owned by one thread (the
    daemon's loop), which hands each new plan to the player; not thread-safe by itself."""

    def __init__(self, policy: MoodPolicy, auto_dj: bool = True, override: str | None = None) -> None:
        self.policy = policy
        self.auto_dj = auto_dj
        self.override = override
        self.emotion: str | None = None

    def see(self, emotion: str | None) -> None:
        """The stable emotion; None (nobody in view) keeps the music as it is."""
        if emotion is not None:
            self.emotion = emotion

    def plan(self) -> MoodPlan | None:
        if not self.auto_dj:
            return None
        if self.override:
            return self.policy.override(self.override)
        return self.policy.plan(self.emotion)


@dataclass(frozen=True)
class Preferences:
    prefer_artists: tuple[str, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    prefer_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    language: str | None = None
    language_tag: str = "comment"


def _has(value: str, names: Sequence[str]) -> bool:
    v = value.casefold()
    return any(n.casefold() in (p.strip() for p in re.split(r"[;/,]", v)) or n.casefold() == v for n in names)


def allowed(track: Track, prefs: Preferences) -> bool:
    if prefs.exclude_artists and _has(track.artist, prefs.exclude_artists):
        return False
    if prefs.exclude_genres and _has(track.genre, prefs.exclude_genres):
        return False
    if prefs.language and track.tags.get(prefs.language_tag.lower(), "").casefold() != prefs.language.casefold():
        return False
    return True


def weight(track: Track, prefs: Preferences, skips: int, boost: float = 1.0) -> float:
    """Preferred artists/genres three times as likely; each skip for this mood halves the chance."""
    w = boost
    if prefs.prefer_artists and _has(track.artist, prefs.prefer_artists):
        w *= 3.0
    if prefs.prefer_genres and _has(track.genre, prefs.prefer_genres):
        w *= 3.0
    return w * 0.5 ** min(skips, 10)


def choose(
    candidates: Sequence[Track],
    count: int,
    prefs: Preferences,
    skips: Mapping[str, int],
    rng: random.Random,
    avoid: Sequence[str] = (),
    boosted: frozenset[str] = frozenset(),
) -> list[Track]:
    """A weighted shuffle of the allowed candidates, ``count`` long (repeating only when it must);
    ``boosted`` files (heard to fit the mood) are three times as likely as the others."""
    pool = [t for t in candidates if allowed(t, prefs)]
    if not pool:
        return []
    fresh = [t for t in pool if t.file not in set(avoid)] or pool
    out: list[Track] = []
    while len(out) < count:
        # Efraimidis-Spirakis: key = u ** (1 / w) gives a weighted order without replacement
        keyed = sorted(
            fresh,
            key=lambda t: (
                rng.random() ** (1.0 / max(weight(t, prefs, skips.get(t.file, 0), 3.0 if t.file in boosted else 1.0), 1e-6))
            ),
            reverse=True,
        )
        out.extend(keyed[: count - len(out)])
        fresh = pool
    return out
