"""What the library scan stored about a track's sound, and which moods it fits: free of MPD.

``moodbox library scan`` keeps its results in MPD's sticker database, one of the box's contracts
(docs/music.md, "Stickers"): ``moodbox_tags`` is a JSON object of the tagger's 50 tag scores,
``moodbox_moods`` one score per configured mood (the weighted mean of that mood's tags), and
``moodbox_file`` the size, mtime and model the scores belong to (so a rescan skips unchanged files).

Tag scores have very different base rates (``rock`` is common, ``happy`` rare), so a track's moods are
compared after dividing each by the library's mean for that mood: a track fits the moods within
``fit`` of its best one, relative to what the owner's own library sounds like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

STICKER_TAGS = "moodbox_tags"
STICKER_MOODS = "moodbox_moods"
STICKER_FILE = "moodbox_file"

#: mood -> {tag: weight}: the MSD_musicnn tags (model labels) each mood is heard in
DEFAULT_MOOD_TAGS: dict[str, dict[str, float]] = {
    "happy": {"happy": 1.0, "party": 1.0, "catchy": 1.0, "dance": 1.0, "funk": 0.5},
    "sad": {"sad": 1.0, "Mellow": 1.0, "beautiful": 1.0},
    "calm": {"chill": 1.0, "chillout": 1.0, "easy listening": 1.0, "ambient": 1.0},
    "angry": {"metal": 1.0, "hard rock": 1.0, "punk": 1.0, "heavy metal": 1.0},
    "neutral": {"indie": 1.0, "acoustic": 1.0, "jazz": 1.0, "folk": 1.0, "easy listening": 0.5, "catchy": 0.5},
    "fear": {"ambient": 1.0, "experimental": 1.0, "instrumental": 0.5},
    "surprise": {"electronic": 1.0, "electro": 1.0, "dance": 0.5, "House": 1.0},
    "disgust": {"punk": 1.0, "hard rock": 1.0, "alternative rock": 1.0},
    "gentle": {"acoustic": 1.0, "folk": 1.0, "Mellow": 1.0, "beautiful": 0.5},
}


def mood_scores(tags: Mapping[str, float], weights: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each mood's weighted mean of its tags' scores (tags the model lacks count as absent)."""
    out: dict[str, float] = {}
    for mood, ws in weights.items():
        total = sum(w for t, w in ws.items() if t in tags)
        if total > 0:
            out[mood] = round(sum(w * float(tags[t]) for t, w in ws.items() if t in tags) / total, 4)
    return out


def scores_of(value: object) -> dict[str, float] | None:
    """A decoded sticker's scores: a non-empty JSON object of numbers, else None (another tool wrote it,
    or it is torn)."""
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


def parse_sticker(value: str) -> dict[str, float] | None:
    """A sticker's JSON object of scores; None when it is not one."""
    try:
        return scores_of(json.loads(value))
    except ValueError:
        return None


def library_means(analysed: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each mood's mean score over the analysed tracks."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for moods in analysed.values():
        for m, s in moods.items():
            sums[m] = sums.get(m, 0.0) + s
            counts[m] = counts.get(m, 0) + 1
    return {m: sums[m] / counts[m] for m in sums}


def relative(moods: Mapping[str, float], means: Mapping[str, float]) -> dict[str, float]:
    """A track's mood scores over the library's means (1.0: as much as the library's average track)."""
    return {m: s / means[m] for m, s in moods.items() if means.get(m, 0.0) > 1e-9}


def best_mood(moods: Mapping[str, float], means: Mapping[str, float], among: Sequence[str] | None = None) -> str | None:
    rel = relative(moods, means)
    if among is not None:
        rel = {m: v for m, v in rel.items() if m in among}
    return max(rel, key=lambda m: rel[m]) if rel else None


def fitting(analysed: Mapping[str, Mapping[str, float]], mood: str, fit: float) -> list[str]:
    """The analysed files that fit ``mood``: its relative score is at least ``fit`` times the track's
    best relative score. Sorted best first."""
    means = library_means(analysed)
    scored = []
    for file, moods in analysed.items():
        rel = relative(moods, means)
        if mood in rel and rel[mood] >= fit * max(rel.values()):
            scored.append((rel[mood], file))
    return [f for _, f in sorted(scored, key=lambda p: (-p[0], p[1]))]
