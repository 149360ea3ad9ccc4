"""The box's published state, defined once: its fields, their JSON names and their null rules.

This is the only place the JSON on ``<base_topic>/<device_id>/state`` is spelled out
(docs/home-assistant.md, "Topics and payloads"). The daemon builds one :class:`BoxState` per change;
the bridge sends :meth:`BoxState.payload`; discovery's templates name the fields through :func:`key`,
so a field that is renamed or removed here fails there at once. A value nobody has measured is
``None`` (JSON ``null``, Home Assistant's *unknown*), never a made-up ``0``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ON_OFF = ("auto_dj", "privacy")  # booleans the JSON carries as "ON" / "OFF"


@dataclass(frozen=True)
class BoxState:
    emotion: str | None = None  # the stable emotion; None while nobody is in view or privacy is ON
    confidence: float | None = None  # its smoothed score, in mqtt.confidence_step steps
    scores: dict[str, float] = field(default_factory=dict)  # the smoothed scores it was chosen from
    face: bool | None = None  # someone in view (held for smoothing.no_face_s); None: camera closed
    faces: int | None = None  # how many faces are in view
    mood: str | None = None  # the mood of the music playing; None when nobody knows
    mood_select: str = "auto"  # the owner's mood choice
    playlist: str | None = None  # where the music of that mood came from
    song: dict[str, str] | None = None  # artist, title, file of the song playing
    music: str | None = None  # PLAYING | PAUSED | STOPPED as MPD reports it; None while MPD is unknown
    auto_dj: bool = True  # the music follows the mood
    privacy: bool = False  # the camera is closed
    volume: int | None = None  # MPD's volume; None until MPD reported it
    fps: float | None = None  # frames processed per second (at most once a minute)
    inference_ms: float | None = None  # the emotion model's time per face
    # a group's leader: the house emotion and which rooms count ({"emotion": e or None, "rooms": {...}});
    # None on a box that leads no group
    house: dict[str, Any] | None = None
    # the box's part in a group: {"name", "role": "leader", "members"} or {"name", "role": "follower",
    # "leader", "playing": "group" | "own", "why"}; None on a box on its own
    group: dict[str, Any] | None = None
    status: str = "starting"  # ok, privacy, what is wrong
    ts: int = 0  # when this state was built (seconds since the epoch); not a change by itself

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ON_OFF:
            out[name] = "ON" if out[name] else "OFF"
        return out

    def payload(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))

    def content(self) -> str:
        """The payload without the timestamp: what decides whether anything changed."""
        data = self.as_json()
        del data["ts"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoxState:
        """The state a payload describes (for clients such as the demo's viewer); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ON_OFF:
            if name in values:
                values[name] = values[name] == "ON"
        return cls(**values)


@dataclass(frozen=True)
class LibraryState:
    """The last library scan's figures, on their own retained topic ``<base_topic>/<device_id>/library``,
    sent only once a scan is known. Not in the state: Home Assistant 2024.3 logs a warning for every state
    message in which a timestamp sensor's value is null (newer releases show unknown quietly)."""

    tracks_analysed: int  # tracks the last scan heard
    tracks_total: int  # tracks in the library then
    last_scan: str  # when it finished (ISO 8601, UTC)

    def payload(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


KEYS = frozenset(f.name for f in fields(BoxState))
LIBRARY_KEYS = frozenset(f.name for f in fields(LibraryState))


def key(name: str, keys: frozenset[str] = KEYS) -> str:
    """A state field's JSON name, for templates: a name that is not a field is an error here, not a
    silently empty entity in Home Assistant."""
    if name not in keys:
        raise KeyError(f"{name!r} is not a field of the published state")
    return name
