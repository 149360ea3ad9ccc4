"""Typed configuration (DESIGN §4): pydantic models with a description on every field.

The descriptions are the documentation: ``config/moodbox.yaml`` is generated from them
(``python -m moodbox.config > config/moodbox.yaml``), and a test keeps the two equal, so the commented
default file can never drift from the code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers_or_nul(cls, v: Any, info: ValidationInfo) -> Any:
        """pydantic's lax mode reads ``port: true`` as 1; YAML's true/yes/on are never a number here. And a
        NUL in any text is a mistake that would only surface later, deep inside a library."""
        if isinstance(v, bool) and info.field_name and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("must be a number, not true/false")
        if isinstance(v, str) and "\0" in v:
            raise ValueError("must not contain a NUL character")
        return v


def _numeric(annotation: Any) -> bool:
    return annotation in (int, float) or any(a in (int, float) for a in getattr(annotation, "__args__", ()))


def _check_host(v: str) -> str:
    if not v.strip() or any(c.isspace() for c in v):
        raise ValueError("must be a host name, address or socket path (not empty, no spaces)")
    return v


class CameraConfig(_Section):
    source: str = Field(
        "picamera2",
        description='Where frames come from: "picamera2" (the Pi camera), a V4L2 device index such as "0", '
        "a video file, a folder of images, or an rtsp:// URL",
    )
    width: int = Field(640, gt=0, le=4096, description="Frame width asked of the camera, in pixels")
    height: int = Field(480, gt=0, le=4096, description="Frame height asked of the camera, in pixels")
    fps: float = Field(10.0, gt=0, le=120, description="Frames processed per second; the camera may deliver more, the newest is kept")
    realtime: bool = Field(
        True,
        description="Files only: pace a video or image folder at its own frame rate; false processes it as fast "
        "as possible (timestamps still come from the file)",
    )
    folder_fps: float = Field(2.0, gt=0, le=120, description="Image folders only: the frame rate the images are replayed at")
    loop: bool = Field(False, description="Files only: start again from the beginning when the file ends")
    retry_s: float = Field(2.0, gt=0, le=3600, description="First wait before reopening a camera that failed; doubles up to retry_max_s")
    retry_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between attempts to reopen a failed camera")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('must name a source: "picamera2", a V4L2 index, a file, a folder or an URL (not empty)')
        return v


class DetectionConfig(_Section):
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="Haar cascade scale step between detection sizes (smaller: slower, finds more)")
    min_neighbors: int = Field(5, ge=1, le=50, description="Haar cascade neighbours a detection needs (larger: fewer false faces)")
    min_face: int = Field(40, ge=12, le=2000, description="Smallest face side to look for, in frame pixels")
    detect_width: int = Field(0, ge=0, le=4096, description="Frames wider than this are shrunk to it before detection; 0 detects at full size")
    equalize: bool = Field(False, description="Equalise the histogram before detection (helps in dim light, adds false faces in bright scenes)")
    max_faces: int = Field(4, ge=1, le=32, description="Most faces classified per frame, largest first")
    threads: int = Field(1, ge=1, le=8, description="OpenCV threads for detection and image work (more make a full scan sooner but busy-wait between frames: an empty room costs twice the CPU with two)")
    tracking: bool = Field(True, description="Search near the faces just found instead of scanning every frame whole (false: a full scan every frame)")
    rescan_s: float = Field(0.5, ge=0, le=60, description="While faces are tracked, a full scan because much of the picture changed (a cut, a moving camera) runs at most this often; smaller changes outside a tracked person are searched where they happened")
    change_threshold: float = Field(4.0, ge=0, le=255, description="Change of an 8x8-pixel block's mean grey level that counts as the picture changing (0: rescan every rescan_s regardless)")
    full_scan_s: float = Field(5.0, ge=0, le=600, description="While faces are tracked, scan the whole frame at least this often whatever changed")
    idle_after_s: float = Field(5.0, ge=0, le=3600, description="A lost face is searched for where it was for this long, and nobody seen for this long counts as an empty room ...")
    idle_scan_s: float = Field(0.5, ge=0, le=60, description="... which is scanned only this often")
    still_threshold: float = Field(2.0, ge=0, le=255, description="A frame in which no 8x8-pixel block's mean grey level changed by more than this counts as unchanged and is not analysed again (0: always analyse)")


class ModelConfig(_Section):
    path: Path | None = Field(None, description="An int8 .tflite emotion model with its .json beside it; null uses the shipped model")
    threads: int = Field(1, ge=1, le=8, description="Interpreter threads (one leaves the other cores to MPD and the system)")


class SmoothingConfig(_Section):
    window_s: float = Field(3.0, gt=0, le=600, description="Seconds of per-frame emotion scores averaged together")
    min_confidence: float = Field(0.35, ge=0, le=1, description="A frame's face whose top score is below this is ignored")
    margin: float = Field(0.1, ge=0, le=1, description="A new emotion must lead the current one by this much of the averaged score to take over")
    dwell_s: float = Field(2.0, ge=0, le=600, description="Seconds a new emotion must keep the lead before it becomes the stable emotion")
    no_face_s: float = Field(10.0, gt=0, le=3600, description='Seconds without a face before the stable emotion becomes "no face" (null)')
    min_frames: int = Field(3, ge=1, le=1000, description="Faces needed in the window before any emotion is reported")
    faces: Literal["room", "largest"] = Field(
        "room", description="room: every face in view (up to detection.max_faces) counts, weighted by its size and confidence; largest: the largest face alone"
    )


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
        "angry": ["calm"], "disgust": ["calm"], "fear": ["calm"], "happy": ["happy"],
        "sad": ["gentle", "happy"], "surprise": ["happy"], "neutral": ["neutral"],
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
    language_tag: str = Field("comment", description="The MPD tag that holds the language (MPD has none of its own; comment needs metadata_to_use \"+comment\" in mpd.conf)")


class MusicConfig(_Section):
    mpd: MpdConfig = Field(default_factory=MpdConfig, description="The MPD server moodbox controls")
    auto_dj: bool = Field(True, description="At start, let the mood choose the music (Home Assistant can switch it)")
    strategy: Literal["match", "uplift"] = Field("match", description="match: music that fits the mood; uplift: music that counteracts it (angry -> calm)")
    strategies: dict[str, dict[str, list[str]]] = Field(
        default_factory=lambda: {k: {e: list(m) for e, m in v.items()} for k, v in DEFAULT_STRATEGIES.items()},
        description="For each strategy, emotion -> moods in stages (e.g. sad -> gentle, then happy); merged over these defaults",
    )
    stage_tracks: int = Field(3, ge=1, le=100, description="Tracks of each stage before the next stage's mood (the last stage repeats)")
    playlists: dict[str, str] = Field(
        default_factory=lambda: {m: f"mood_{m}" for m in MOODS},
        description="Mood -> MPD stored playlist, the mood's first choice; merged over these defaults (null removes one)",
    )
    queries: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {m: dict(q) for m, q in DEFAULT_QUERIES.items()},
        description="Mood -> MPD tag query (tag: regular expression), used when the playlist is missing or empty; merged over these defaults (null removes one)",
    )
    fallback_mood: str = Field("neutral", description="Played when a mood has neither a playlist nor matching tracks")
    preferences: PreferencesConfig = Field(default_factory=PreferencesConfig, description="The owner's taste, applied to every mood")
    change: Literal["end_of_track", "immediate"] = Field("end_of_track", description="When a new mood changes the music: after the current track, or at once (with crossfade)")
    crossfade_s: int = Field(3, ge=0, le=30, description="MPD crossfade between tracks, in seconds")
    queue_length: int = Field(15, ge=1, le=1000, description="Tracks queued for a mood")
    max_volume: int = Field(100, ge=0, le=100, description="Highest volume a command may set (percent)")
    skip_feedback_s: float = Field(30.0, ge=0, le=3600, description="A skip this soon after a track starts counts against that track for the mood")
    state_dir: Path | None = Field(None, description="Where skip feedback and the owner's settings from Home Assistant are kept; null: $STATE_DIRECTORY or ~/.local/state/moodbox")

    @field_validator("playlists", "queries", mode="before")
    @classmethod
    def _merge_moods(cls, v: Any, info: Any) -> Any:
        """A user's entries are merged over the defaults (null removes one), so changing one mood's
        playlist does not silently drop the others."""
        if not isinstance(v, dict):
            return v
        defaults: dict[str, Any] = (
            {m: f"mood_{m}" for m in MOODS} if info.field_name == "playlists" else {m: dict(q) for m, q in DEFAULT_QUERIES.items()}
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
    def _strategies(cls, v: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        problems = []
        for name in ("match", "uplift"):
            if name not in v:
                problems.append(f"strategy {name!r} missing")
        for name, mapping in v.items():
            if name not in ("match", "uplift"):
                problems.append(f"unknown strategy {name!r}")
            missing = [e for e in EMOTIONS if e not in mapping]
            unknown = [e for e in mapping if e not in EMOTIONS]
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
        seen = dict.fromkeys([*self.playlists, *self.queries, *(m for s in self.strategies.values() for ms in s.values() for m in ms)])
        return list(seen)


class TlsConfig(_Section):
    enabled: bool = Field(False, description="Connect to the broker over TLS")
    ca_file: Path | None = Field(None, description="CA certificate file; null uses the system's CAs")
    cert_file: Path | None = Field(None, description="Client certificate (for brokers that require one)")
    key_file: Path | None = Field(None, description="Client certificate's private key")
    insecure: bool = Field(False, description="Skip the broker host name check (testing only)")


class MqttConfig(_Section):
    enabled: bool = Field(True, description="Publish state and take commands over MQTT")
    host: str = Field("localhost", description="MQTT broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port (8883 is usual with TLS)")
    username: str | None = Field(None, description="Broker user name")
    password: str | None = Field(
        None, description="Broker password; better set MOODBOX_MQTT_PASSWORD or a systemd credential named mqtt_password"
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings")
    device_id: str = Field("moodbox", description="This box's id in topics and in Home Assistant: lower-case letters, digits, _ and -")
    base_topic: str = Field("moodbox", description="Topics live under <base_topic>/<device_id>/")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix")
    state_interval_s: float = Field(30.0, gt=0, le=3600, description="The state is re-published at least this often")
    state_min_interval_s: float = Field(1.0, ge=0, le=3600, description="The state is never published more often than this (changes in between are merged)")
    reconnect_max_s: float = Field(2.0, ge=1, le=300, description="Longest wait between attempts to reach a lost broker (a refused password or a rejected certificate waits longer: 2 s doubling to 5 min)")
    command_interval_s: float = Field(0.25, ge=0, le=60, description="At most one command per topic this often; one that comes sooner waits, the latest value winning (a flood cannot thrash MPD)")
    rediscover_min_s: float = Field(5.0, ge=0, le=3600, description="Discovery is re-published when Home Assistant comes online, but at most this often")
    diagnostics_interval_s: float = Field(60.0, ge=0, le=3600, description="fps and inference time in the state change at most this often (each change is a row in Home Assistant's recorder)")
    confidence_step: float = Field(0.1, ge=0.01, le=1, description="The published confidence is rounded to this step and changes only when the measured one moves a full step away")
    confidence_interval_s: float = Field(10.0, ge=0, le=3600, description="The published confidence changes at most this often while the emotion stays the same")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check_host(v)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", v):
            raise ValueError("must be 1-64 lower-case letters, digits, _ and - only")
        return v

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        """A topic prefix: levels of printable text, no wildcards, no empty level (``a//b``), no ``$``
        start (reserved for the broker)."""
        if not v or len(v) > 128 or not v.isprintable() or any(c in v for c in "#+") or v.startswith("$"):
            raise ValueError("must be 1-128 printable characters without the wildcards + and # or a leading $")
        if "" in v.split("/"):
            raise ValueError("must not start or end with / or hold an empty level (//)")
        return v


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")


class Config(_Section):
    camera: CameraConfig = Field(default_factory=CameraConfig, description="The frame source")
    detection: DetectionConfig = Field(default_factory=DetectionConfig, description="Haar face detection")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The emotion model")
    smoothing: SmoothingConfig = Field(default_factory=SmoothingConfig, description="Per-frame emotions -> one stable emotion")
    music: MusicConfig = Field(default_factory=MusicConfig, description="Music played through MPD")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Home Assistant over MQTT")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging")


# --- the documented default file -----------------------------------------------------------------------


def _yaml_value(v: Any) -> str:
    if isinstance(v, Path):
        v = str(v)
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _render(model: type[BaseModel], instance: BaseModel, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.extend(_render(type(value), value, indent + 1))
        elif isinstance(value, dict):
            lines.append(f"{pad}{name}:")
            lines.extend(f"{pad}  {k}: {_yaml_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{pad}{name}: {_yaml_value(value)}")
        if indent == 0:
            lines.append("")
    return lines


def default_yaml() -> str:
    head = [
        "# moodbox configuration: every key, with its default. Generated from device/moodbox/config.py",
        "# (python -m moodbox.config); copy to /etc/moodbox/config.yaml and change what you need.",
        "# Check a file with: moodbox check-config FILE",
        "",
    ]
    return "\n".join(head + _render(Config, Config(), 0)).rstrip() + "\n"


if __name__ == "__main__":
    print(default_yaml(), end="")
