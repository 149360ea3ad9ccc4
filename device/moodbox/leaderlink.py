"""A follower's link to its group's leader (docs/multiroom.md): while the leader is there, the box's
speaker plays the leader's music (its snapclient does) and the box keeps its own MPD stopped; after
``group.fallback_s`` without a word from the leader it plays its own music for its own room, and it
rejoins once the leader is heard again.

The leader is heard through its beat (``<base_topic>/<leader>/group``, every :data:`BEAT_S`) on the
group's MQTT broker: the group is made over MQTT, so a leader the follower cannot hear (the leader box
gone, its daemon stopped, the broker gone) is a leader lost. Owned by the daemon's loop; pure logic, the
time is passed in.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)

BEAT_S = 2.0  # how often a leader says it is there
REJOIN_BEATS = 2  # beats in a row (each within 2 * BEAT_S of the last) before a follower rejoins


def beat_payload(group: str, leader: str) -> str:
    return json.dumps({"group": group, "leader": leader}, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class LeaderHeard:
    """What a follower knows of its leader, for the published state."""

    leader: str
    following: bool  # the box plays the group's music (True) or its own (False)
    why: str  # "leader" | "waiting for the leader" | "leader lost"

    def as_json(self, group: str) -> dict[str, Any]:
        return {
            "name": group,
            "role": "follower",
            "leader": self.leader,
            "playing": "group" if self.following else "own",
            "why": self.why,
        }


class LeaderLink:
    def __init__(self, group: str, leader: str, fallback_s: float, now: float) -> None:
        self.group = group
        self.leader = leader
        self.fallback_s = fallback_s
        # A box starts silent, waiting for its leader (at most fallback_s): a follower that boots beside
        # a playing leader never plays a few seconds of its own music first.
        self.following = True
        self._started = now
        self._beat_at: float | None = None  # monotonic time of the last beat
        self._beats = 0  # beats in the current run
        self.leader_state: dict[str, Any] | None = None  # the leader's last state (its music, for ours)
        self._bad = Repeats(log)

    def heard(self, kind: str, payload: bytes, at: float) -> None:
        """A message on one of the leader's topics (from the bridge); a malformed one is ignored."""
        if kind == "availability":
            if payload.strip() != b"online":
                self._beats = 0  # a leader that stops says so: the next beats start a new run
            return
        try:
            data = json.loads(payload) if payload else None
            if data is not None and not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if self._bad.occurred(kind):
                log.warning("group: ignored a %s message from the leader %s that is not JSON (%s)", kind, self.leader, exc)
            return
        if kind == "state":
            self.leader_state = data
        elif kind == "group" and data is not None:
            if data.get("group") != self.group:
                if self._bad.occurred("other group"):
                    log.warning("group: %s leads group %r, not %r: not following it", self.leader, data.get("group"), self.group)
                return
            last, self._beat_at = self._beat_at, at
            self._beats = self._beats + 1 if last is not None and at - last <= 2 * BEAT_S else 1

    def update(self, now: float) -> bool:
        """Follow or fall back, as the leader's beats say; True when that changed (logged)."""
        heard_for = None if self._beat_at is None else now - self._beat_at
        if self.following:
            silent = now - (self._beat_at if self._beat_at is not None else self._started)
            if silent < self.fallback_s:
                return False
            self.following = False
            self._beats = 0
            log.warning(
                "group: nothing from the leader %s for %.0f s: playing this box's own music for its own room", self.leader, silent
            )
            return True
        if self._beats >= REJOIN_BEATS and heard_for is not None and heard_for <= 2 * BEAT_S:
            self.following = True
            log.info("group: the leader %s is back: playing the group's music", self.leader)
            return True
        return False

    def latest(self, now: float) -> LeaderHeard:
        if self.following:
            why = "leader" if self._beat_at is not None and now - self._beat_at < 2 * BEAT_S else "waiting for the leader"
        else:
            why = "leader lost"  # no figure that ticks: the state would change every second
        return LeaderHeard(self.leader, self.following, why)
