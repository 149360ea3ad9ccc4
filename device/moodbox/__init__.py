"""moodbox: reads the room's mood from a camera and plays music to fit."""

__version__ = "0.1.0"
