"""The ``group`` section of the config: several boxes in one house (docs/multiroom.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from moodbox.configbase import _Section

_ID = re.compile(r"[a-z0-9_-]{1,64}")


class GroupConfig(_Section):
    """Who plays what: the leader's MPD feeds its snapserver; a follower's snapclient (set up by the Ansible
    role, pointed at the leader's host) plays that stream while the box keeps its own MPD stopped."""

    name: str | None = Field(
        None, description="The group this box belongs to (e.g. house); null: the box is on its own, as before"
    )
    role: Literal["leader", "follower"] = Field(
        "leader", description="leader: combines every room into the house mood and picks the music; follower: reports its room"
    )
    leader: str | None = Field(None, description="A follower's leader: its mqtt.device_id (same broker and mqtt.base_topic)")
    members: list[str] = Field(
        default_factory=list, description="A leader's followers: their mqtt.device_id (same broker and mqtt.base_topic)"
    )
    stale_s: float = Field(
        75.0,
        ge=2,
        le=3600,
        description="A room whose box has not reported for this long counts for nothing in the house mood (longer than the members' mqtt.state_interval_s, 30 s by default)",
    )

    fallback_s: float = Field(
        10.0,
        ge=3,
        le=300,
        description="A follower that has heard nothing from its leader for this long plays its own music for its own room; it rejoins when the leader is back",
    )

    @field_validator("leader")
    @classmethod
    def _leader(cls, v: str | None) -> str | None:
        if v is not None and not _ID.fullmatch(v):
            raise ValueError("must be a device_id: 1-64 lower-case letters, digits, _ and - only")
        return v

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not _ID.fullmatch(m)]
        if bad:
            raise ValueError(f"not a device_id: {', '.join(bad)} (1-64 lower-case letters, digits, _ and -)")
        if len(set(v)) != len(v):
            raise ValueError("a member is listed twice")
        return v

    @model_validator(mode="after")
    def _roles(self) -> GroupConfig:
        if self.name is None:
            return self
        if self.role == "follower" and self.leader is None:
            raise ValueError("a follower needs group.leader (the leader's mqtt.device_id)")
        if self.role == "leader" and self.leader is not None:
            raise ValueError("group.leader is a follower's key; a leader lists its group.members")
        if self.role == "follower" and self.members:
            raise ValueError("group.members is the leader's list; a follower names only group.leader")
        return self

    def leads(self) -> bool:
        return self.name is not None and self.role == "leader"

    def part(self) -> str | None:
        """The box's role in its group, None for a box on its own."""
        return self.role if self.name is not None else None

    def follows(self) -> bool:
        return self.name is not None and self.role == "follower"
