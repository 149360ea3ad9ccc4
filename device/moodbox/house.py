"""The house mood: every room's stable emotion combined, weighted by the faces in each room, the way
the room mode weighs faces within one picture (docs/multiroom.md). Pure logic, for the leader's loop.

A room counts for nothing while its privacy is ON, while nobody is in it, and once its box has not
reported for ``group.stale_s`` or said it is offline; the published state says which rooms count and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RoomReport:
    """What one box last said of its room (its published state), and whether it is still heard."""

    room: str
    emotion: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    faces: int | None = None
    privacy: bool = False
    online: bool = True
    age_s: float | None = 0.0  # since its last state; None: never heard

    @classmethod
    def from_state(cls, room: str, state: Mapping[str, Any], age_s: float, online: bool) -> RoomReport:
        """From a box's state JSON; fields of the wrong type are taken as unknown (a hostile message)."""
        scores = state.get("scores")
        faces = state.get("faces")
        emotion = state.get("emotion")
        return cls(
            room=room,
            emotion=emotion if isinstance(emotion, str) else None,
            scores={str(k): float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if isinstance(scores, dict)
            else {},
            faces=faces if isinstance(faces, int) and not isinstance(faces, bool) and faces >= 0 else None,
            privacy=state.get("privacy") == "ON",
            online=online,
            age_s=age_s,
        )


@dataclass(frozen=True)
class HouseMood:
    emotion: str | None  # None: no room counts (the music is left as it is)
    scores: dict[str, float]
    rooms: dict[str, dict[str, Any]]  # room -> {"counts": bool, "faces": n, "emotion": e} or {"counts": False, "why": ...}

    def as_json(self) -> dict[str, Any]:
        return {"emotion": self.emotion, "rooms": self.rooms}


def why_not(room: RoomReport, stale_s: float) -> str | None:
    """Why a room counts for nothing, or None when it counts."""
    if room.age_s is None:
        return "not heard yet"
    if not room.online:
        return "offline"
    if room.age_s > stale_s:
        return "not reporting"
    if room.privacy:
        return "privacy"
    if not room.faces or room.emotion is None or not room.scores:
        return "empty"
    return None


def combine(rooms: Sequence[RoomReport], stale_s: float, current: str | None = None, margin: float = 0.1) -> HouseMood:
    """The faces-weighted mean of the counting rooms' smoothed scores; the house emotion changes only when
    another leads the current one by ``margin`` (as the smoother's own rule), so two rooms that disagree
    evenly do not flip the music back and forth."""
    total: dict[str, float] = {}
    weight = 0
    out: dict[str, dict[str, Any]] = {}
    for room in rooms:
        why = why_not(room, stale_s)
        if why is not None:
            out[room.room] = {"counts": False, "why": why}
            continue
        assert room.faces is not None
        out[room.room] = {"counts": True, "faces": room.faces, "emotion": room.emotion}
        weight += room.faces
        for e, s in room.scores.items():
            total[e] = total.get(e, 0.0) + room.faces * s
    if not weight:
        return HouseMood(None, {}, out)
    scores = {e: round(s / weight, 3) for e, s in total.items()}
    best = max(scores, key=lambda e: scores[e])
    if current in scores and scores[best] - scores[current] < margin:
        best = current
    return HouseMood(best, scores, out)
