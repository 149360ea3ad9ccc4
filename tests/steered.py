"""The player steered as the daemon's loop steers it: the stable emotion, the owner's mood choice and
auto-DJ go into a MoodIntent, whose plan is handed to the player."""

from __future__ import annotations

from typing import Any

from moodbox.music.mood import MoodIntent, MoodPolicy
from moodbox.music.player import MpdPlayer


class SteeredPlayer(MpdPlayer):
    def __init__(self, cfg: Any, *args: Any, **kw: Any) -> None:
        super().__init__(cfg, *args, **kw)
        self.intent = MoodIntent(MoodPolicy(cfg.strategy, cfg.strategies, cfg.fallback_mood), cfg.auto_dj)
        self.set_plan(self.intent.plan())

    def set_emotion(self, emotion: str | None) -> None:
        self.intent.see(emotion)
        self.set_plan(self.intent.plan())

    def set_override(self, mood: str | None) -> None:
        if mood is not None and mood not in self.cfg.moods():
            raise ValueError(f"unknown mood {mood!r}; known: {', '.join(self.cfg.moods())}")
        self.intent.override = mood
        self.set_plan(self.intent.plan())

    def set_auto_dj(self, on: bool) -> None:
        self.intent.auto_dj = on
        self.set_plan(self.intent.plan())
