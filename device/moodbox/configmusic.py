"""The ``music`` section of the config: MPD, moods, playlists, tag queries, strategies, preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from moodbox.configbase import EMOTIONS, _check_host, _Section
from moodbox.music.analysis import DEFAULT_MOOD_TAGS


class MpdConfig(_Section):
    host: str = Field("localhost", description="MPD host name, address or socket path")
    port: int = Field(6600, ge=1, le=65535, description="MPD TCP port")
    password: str | None = Field(
        None, description="MPD password; better set MOODBOX_MPD_PASSWORD or a systemd credential named mpd_password"
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="Seconds to wait for MPD to answer")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check_host(v)


MOODS = (*EMOTIONS, "calm", "gentle")

#: emotion -> moods played for it, in stages (the last stage repeats): match mirrors, uplift counteracts
DEFAULT_STRATEGIES: dict[str, dict[str, list[str]]] = {
    "match": {e: [e] for e in EMOTIONS},
    "uplift": {
        "angry": ["calm"],
        "disgust": ["calm"],
        "fear": ["calm"],
        "happy": ["happy"],
        "sad": ["gentle", "happy"],
        "surprise": ["happy"],
        "neutral": ["neutral"],
    },
}

#: mood -> MPD tag query used when the mood's playlist is missing or empty (regular expressions)
DEFAULT_QUERIES: dict[str, dict[str, str]] = {
    "happy": {"genre": "Pop|Dance|Disco|Funk"},
    "sad": {"genre": "Blues|Soul|Ballad"},
    "angry": {"genre": "Rock|Metal|Punk"},
    "fear": {"genre": "Ambient|Classical"},
    "surprise": {"genre": "Electronic|Dance"},
    "disgust": {"genre": "Rock|Grunge"},
    "neutral": {"genre": "Jazz|Acoustic|Folk|Indie"},
    "calm": {"genre": "Ambient|Classical|Chill|Lounge"},
    "gentle": {"genre": "Acoustic|Folk|Soul"},
}

MPD_TAGS = ("artist", "albumartist", "album", "title", "genre", "date", "composer", "performer", "comment", "label", "file")


class PreferencesConfig(_Section):
    prefer_artists: list[str] = Field(default_factory=list, description="Artists queued more often (three times the chance)")
    exclude_artists: list[str] = Field(default_factory=list, description="Artists never queued")
    prefer_genres: list[str] = Field(default_factory=list, description="Genres queued more often (three times the chance)")
    exclude_genres: list[str] = Field(default_factory=list, description="Genres never queued")
    language: str | None = Field(None, description="Queue only tracks whose language tag has this value (e.g. en); null: any")
    language_tag: str = Field(
        "comment",
        description='The MPD tag that holds the language (MPD has none of its own; comment needs metadata_to_use "+comment" in mpd.conf)',
    )


class AnalysisConfig(_Section):
    """How ``moodbox library scan`` hears the music, and how the DJ uses what it heard."""

    moods: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {m: dict(t) for m, t in DEFAULT_MOOD_TAGS.items()},
        description="Mood -> {tag: weight}: the tagger's tags (its labels, e.g. happy, Mellow, chillout, metal) a mood is heard in; merged over these defaults (null removes one). A change applies at the next scan, without decoding anything again",
    )
    fit: float = Field(
        0.8,
        gt=0,
        le=1,
        description="An analysed track plays for a mood when its score for that mood, relative to the library's average, is at least this share of its best mood's",
    )
    patches: int = Field(4, ge=1, le=20, description="3-second pieces heard per track, spread over it (more: slower, steadier)")
    model: Path | None = Field(
        None, description="The music tagger (.tflite with its .json beside it); null uses the shipped musicnn model"
    )

    @field_validator("moods", mode="before")
    @classmethod
    def _merge(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        merged = {**{m: dict(t) for m, t in DEFAULT_MOOD_TAGS.items()}, **v}
        return {k: val for k, val in merged.items() if val is not None}

    @field_validator("moods")
    @classmethod
    def _weights(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        bad = [f"{m}.{t}" for m, ws in v.items() for t, w in ws.items() if w < 0]
        empty = [m for m, ws in v.items() if not any(w > 0 for w in ws.values())]
        if bad:
            raise ValueError(f"negative weight(s) for {', '.join(bad)}")
        if empty:
            raise ValueError(f"mood(s) {', '.join(empty)} have no tag with a positive weight (null removes a mood)")
        return v


class MusicConfig(_Section):
    mpd: MpdConfig = Field(default_factory=MpdConfig, description="The MPD server moodbox controls")
    auto_dj: bool = Field(True, description="At start, let the mood choose the music (Home Assistant can switch it)")
    strategy: Literal["match", "uplift"] = Field(
        "match", description="match: music that fits the mood; uplift: music that counteracts it (angry -> calm)"
    )
    strategies: dict[str, dict[str, list[str]]] = Field(
        default_factory=lambda: {k: {e: list(m) for e, m in v.items()} for k, v in DEFAULT_STRATEGIES.items()},
        description="For each strategy, emotion -> moods in stages (e.g. sad -> gentle, then happy); merged over these defaults",
    )
    stage_tracks: int = Field(
        3, ge=1, le=100, description="Tracks of each stage before the next stage's mood (the last stage repeats)"
    )
    playlists: dict[str, str] = Field(
        default_factory=lambda: {m: f"mood_{m}" for m in MOODS},
        description="Mood -> MPD stored playlist, the mood's first choice; merged over these defaults (null removes one)",
    )
    queries: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {m: dict(q) for m, q in DEFAULT_QUERIES.items()},
        description="Mood -> MPD tag query (tag: regular expression), used when the playlist is missing or empty; merged over these defaults (null removes one)",
    )
    fallback_mood: str = Field("neutral", description="Played when a mood has neither a playlist nor matching tracks")
    preferences: PreferencesConfig = Field(
        default_factory=PreferencesConfig, description="The owner's taste, applied to every mood"
    )
    change: Literal["end_of_track", "immediate"] = Field(
        "end_of_track", description="When a new mood changes the music: after the current track, or at once (with crossfade)"
    )
    crossfade_s: int = Field(3, ge=0, le=30, description="MPD crossfade between tracks, in seconds")
    queue_length: int = Field(15, ge=1, le=1000, description="Tracks queued for a mood")
    max_volume: int = Field(100, ge=0, le=100, description="Highest volume a command may set (percent)")
    skip_feedback_s: float = Field(
        30.0, ge=0, le=3600, description="A skip this soon after a track starts counts against that track for the mood"
    )
    library_dir: Path | None = Field(
        None,
        description="The music folder moodbox library scan reads (MPD's music_directory); null: ask MPD (over its local socket), else /var/lib/mpd/music",
    )
    analysis: AnalysisConfig = Field(
        default_factory=AnalysisConfig, description="Tracks' moods heard from their sound by moodbox library scan"
    )
    state_dir: Path | None = Field(
        None,
        description="Where skip feedback and the owner's settings from Home Assistant are kept; null: $STATE_DIRECTORY or ~/.local/state/moodbox",
    )

    @field_validator("playlists", "queries", mode="before")
    @classmethod
    def _merge_moods(cls, v: Any, info: Any) -> Any:
        """A user's entries are merged over the defaults (null removes one), so changing one mood's
        playlist does not silently drop the others."""
        if not isinstance(v, dict):
            return v
        defaults: dict[str, Any] = (
            {m: f"mood_{m}" for m in MOODS}
            if info.field_name == "playlists"
            else {m: dict(q) for m, q in DEFAULT_QUERIES.items()}
        )
        merged = {**defaults, **v}
        return {k: val for k, val in merged.items() if val is not None}

    @field_validator("strategies", mode="before")
    @classmethod
    def _merge_strategies(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        merged = {k: {e: list(m) for e, m in s.items()} for k, s in DEFAULT_STRATEGIES.items()}
        for name, mapping in v.items():
            merged[name] = {**merged.get(name, {}), **mapping} if isinstance(mapping, dict) else mapping
        return merged

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v: dict[str, dict[str, list[str]]], info: ValidationInfo) -> dict[str, dict[str, list[str]]]:
        # the configured model's labels (configfile.parse reads them from its metadata), else FER2013's
        labels = tuple((info.context or {}).get("labels") or EMOTIONS)
        problems = []
        for name in ("match", "uplift"):
            if name not in v:
                problems.append(f"strategy {name!r} missing")
        for name, mapping in v.items():
            if name not in ("match", "uplift"):
                problems.append(f"unknown strategy {name!r}")
            missing = [e for e in labels if e not in mapping]
            unknown = [e for e in mapping if e not in labels]
            empty = [e for e, moods in mapping.items() if not moods]
            if missing:
                problems.append(f"{name}: no moods for {', '.join(missing)}")
            if unknown:
                problems.append(f"{name}: unknown emotion(s) {', '.join(unknown)}")
            if empty:
                problems.append(f"{name}: empty mood list for {', '.join(empty)}")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("queries")
    @classmethod
    def _queries(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        bad = sorted({t for q in v.values() for t in q if t not in MPD_TAGS})
        if bad:
            raise ValueError(f"unknown tag(s) {', '.join(bad)}; use {', '.join(MPD_TAGS)}")
        return v

    @model_validator(mode="after")
    def _moods_are_playable(self) -> MusicConfig:
        playable = set(self.playlists) | set(self.queries)
        unplayable = sorted({m for s in self.strategies.values() for ms in s.values() for m in ms} - playable)
        if unplayable:
            raise ValueError(f"mood(s) {', '.join(unplayable)} used in strategies have no playlist or query")
        if self.fallback_mood not in playable:
            raise ValueError(f"fallback_mood {self.fallback_mood!r} has no playlist or query")
        return self

    def moods(self) -> list[str]:
        """Every mood this config can play: for the mood select in Home Assistant."""
        seen = dict.fromkeys(
            [*self.playlists, *self.queries, *(m for s in self.strategies.values() for ms in s.values() for m in ms)]
        )
        return list(seen)
