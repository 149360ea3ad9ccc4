"""A group leader's view of the house: each member box's last state and availability, and the house
mood made of them and of its own room (``house.combine``). Owned by the daemon's loop (the bridge
queues the members' messages there); not thread-safe by itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moodbox.config import Config
from moodbox.house import HouseMood, RoomReport, combine
from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberSaid:
    """A member's state or availability message, queued by the bridge for the daemon's loop."""

    member: str
    kind: str  # "state" | "availability"
    payload: bytes
    at: float  # monotonic time it arrived


@dataclass
class _Member:
    state: dict[str, Any] | None = None
    heard_at: float | None = None  # monotonic time of its last state
    online: bool = True  # until it says otherwise (its last will says offline)


class Rooms:
    def __init__(self, own: str, members: Sequence[str], stale_s: float, margin: float) -> None:
        self.own = own
        self.members = {m: _Member() for m in members if m != own}
        self.stale_s = stale_s
        self.margin = margin
        self.latest = HouseMood(None, {}, {})
        self._bad = Repeats(log)

    @classmethod
    def for_leader(cls, cfg: Config) -> Rooms | None:
        g = cfg.group
        return cls(cfg.mqtt.device_id, g.members, g.stale_s, cfg.smoothing.margin) if g.leads() else None

    def heard(self, member: str, kind: str, payload: bytes, now: float) -> None:
        """A member's state or availability message (from the bridge); a malformed one is ignored."""
        m = self.members.get(member)
        if m is None:
            return
        if kind == "availability":
            m.online = payload.strip() != b"offline" and payload.strip() != b""
            return
        if not payload:
            m.state, m.heard_at = None, None  # its retained state was cleared: the box was removed
            return
        try:
            state = json.loads(payload)
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if self._bad.occurred(member):
                log.warning("group: ignored a state from %s that is not a box's state (%s)", member, exc)
            return
        m.state, m.heard_at = state, now

    def house(self, own: Mapping[str, Any], now: float) -> HouseMood:
        """The house mood now: this box's room (its room state, as published) and every member's."""
        rooms = [RoomReport.from_state(self.own, own, 0.0, True)]
        for name, m in sorted(self.members.items()):
            if m.state is None or m.heard_at is None:
                rooms.append(RoomReport(name, online=m.online, age_s=None))
            else:
                rooms.append(RoomReport.from_state(name, m.state, now - m.heard_at, m.online))
        self.latest = combine(rooms, self.stale_s, self.latest.emotion, self.margin)
        return self.latest

    def follow(self, vision: Mapping[str, Any], privacy: bool, now: float) -> bool:
        """Recompute with this box's own room (its published vision; privacy hides it); True when the
        house emotion changed. A change of which rooms count is logged."""
        before = self.latest
        own = {"privacy": "ON"} if privacy else {**vision, "privacy": "OFF"}
        house = self.house(own, now)
        if house.rooms != before.rooms or house.emotion != before.emotion:
            counting = [r for r, v in house.rooms.items() if v["counts"]]
            log.info("house emotion: %s (rooms counting: %s)", house.emotion or "-", ", ".join(counting) or "none")
        return house.emotion != before.emotion
