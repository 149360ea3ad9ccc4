"""The box's part in a group (docs/multiroom.md), one object for the daemon's loop: nothing for a box on
its own; the house (:class:`~moodbox.rooms.Rooms`) for a leader; the link to its leader
(:class:`~moodbox.leaderlink.LeaderLink`) for a follower. Not thread-safe by itself."""

from __future__ import annotations

from typing import Any

from moodbox.config import Config
from moodbox.leaderlink import LeaderLink, beat_payload
from moodbox.music.player import PlayerState
from moodbox.rooms import MemberSaid, Rooms

__all__ = ["Grouping", "MemberSaid"]


class Grouping:
    def __init__(self, cfg: Config, now: float) -> None:
        g = cfg.group
        self.name = g.name
        self.rooms = Rooms.for_leader(cfg)  # a group's leader plays for the house; None otherwise
        self.link = LeaderLink(g.name, g.leader, g.fallback_s, now) if g.follows() and g.name and g.leader else None
        self.members = list(g.members) if self.rooms else []

    @property
    def listens_to(self) -> list[str]:
        """The boxes whose topics this box subscribes to: a leader's members, a follower's leader."""
        return self.members if self.rooms else [self.link.leader] if self.link else []

    def beat(self, device_id: str) -> str | None:
        """A leader's beat (its followers' sign of life), None on any other box."""
        return beat_payload(self.name, device_id) if self.rooms and self.name else None

    def heard(self, said: MemberSaid) -> None:
        if self.rooms is not None:
            self.rooms.heard(said.member, said.kind, said.payload, said.at)
        elif self.link is not None and said.member == self.link.leader:
            self.link.heard(said.kind, said.payload, said.at)

    def following(self) -> bool:
        return self.link is not None and self.link.following

    def fields(self, p: PlayerState, now: float) -> dict[str, Any]:
        """The state's ``house`` and ``group``, and its music: a follower that plays its leader's music
        shows the leader's (null where the leader has not said), not its stopped MPD's."""
        music = {"mood": p.mood, "playlist": p.source, "song": p.song, "music": p.music}
        out: dict[str, Any] = {"house": None, "group": None, **music}
        if self.rooms is not None:
            out["house"] = self.rooms.latest.as_json()
            out["group"] = {"name": self.name, "role": "leader", "members": self.members}
        elif self.link is not None:
            heard = self.link.latest(now)
            out["group"] = heard.as_json(self.link.group)
            if heard.following:
                out.update(_music_of(self.link.leader_state or {}))
        return out


def _music_of(leader: dict[str, Any]) -> dict[str, Any]:
    """The leader's music fields, each of the right type or null (its message is not trusted blindly)."""
    song = leader.get("song")
    ok_song = isinstance(song, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in song.items())
    return {
        "mood": leader.get("mood") if isinstance(leader.get("mood"), str) else None,
        "playlist": leader.get("playlist") if isinstance(leader.get("playlist"), str) else None,
        "song": song if ok_song else None,
        "music": leader.get("music") if leader.get("music") in ("PLAYING", "PAUSED", "STOPPED") else None,
    }
