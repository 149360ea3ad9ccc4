"""``moodbox library scan``'s work: which of MPD's tracks need hearing, hearing them, and keeping the
result in MPD's sticker database (the contract is in ``moodbox.music.analysis``).

Each track's stickers are written as soon as it is heard, ``moodbox_file`` last, so a scan stopped at
any moment (Ctrl-C, a power cut) goes on from there next time; a file whose size and mtime are those
recorded is not decoded again, and a change of the mood weights only recomputes ``moodbox_moods``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mpd

from moodbox.config import MusicConfig
from moodbox.library.decode import DecodeError, pieces
from moodbox.library.tagger import Tagger
from moodbox.music.analysis import (
    STICKER_FILE,
    STICKER_MOODS,
    STICKER_TAGS,
    best_mood,
    library_means,
    mood_scores,
    scores_of,
)
from moodbox.music.dj import StickersUnavailable
from moodbox.music.mpdlink import find_stickers

log = logging.getLogger(__name__)

DEFAULT_LIBRARY_DIR = Path("/var/lib/mpd/music")
#: files that look like music: one MPD left out of its database could not read it
AUDIO_SUFFIXES = frozenset(
    ".mp3 .ogg .oga .opus .flac .wav .m4a .mp4 .aac .wma .aif .aiff .ape .wv .mpc .mka .webm .dsf .alac".split()
)


class ScanError(Exception):
    """The scan cannot run at all; the message says why in one line (exit 1)."""


@dataclass
class ScanResult:
    tracks: int = 0  # in MPD's database
    heard: int = 0  # decoded and tagged this time
    unchanged: int = 0  # heard before, file unchanged
    reweighted: int = 0  # unchanged, moods recomputed for new weights
    broken: list[str] = field(default_factory=list)  # do not decode (named as they were met)
    unlisted: list[str] = field(default_factory=list)  # music files MPD could not read (not in its database)
    missing: list[str] = field(default_factory=list)  # in MPD's database, not under the music folder
    analysed: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> moods, every analysed track
    tags: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> tags, every analysed track
    seconds: float = 0.0

    def per_mood(self) -> Counter[str]:
        means = library_means(self.analysed)
        return Counter(m for m in (best_mood(s, means) for s in self.analysed.values()) if m)

    def top_tags(self, n: int = 8) -> list[tuple[str, float]]:
        sums: Counter[str] = Counter()
        for tags in self.tags.values():
            sums.update(tags)
        count = max(1, len(self.tags))
        return [(t, s / count) for t, s in sums.most_common(n)]


def library_dir(cfg: MusicConfig, client: mpd.MPDClient) -> Path:
    """music.library_dir; else MPD's music_directory (MPD tells only local-socket clients); else Debian's."""
    if cfg.library_dir is not None:
        return cfg.library_dir.expanduser()
    try:
        told = client.config().get("music_directory")
        if told:
            return Path(told)
    except mpd.CommandError:  # "Command only permitted to local clients"
        pass
    return DEFAULT_LIBRARY_DIR


def _stickers(client: mpd.MPDClient, name: str) -> dict[str, object]:
    try:
        return find_stickers(client, name)
    except StickersUnavailable as exc:
        raise ScanError(f"MPD keeps no stickers ({exc}): set sticker_file in mpd.conf (the Ansible role does)") from None


def _tracks(client: mpd.MPDClient) -> dict[str, float | None]:
    """file -> its length in seconds (None when MPD does not know it), for every song in MPD's database."""
    out: dict[str, float | None] = {}
    for item in client.listallinfo():
        if "file" not in item:
            continue
        raw = item.get("duration") or item.get("time")
        try:
            out[str(item["file"])] = float(str(raw)) if raw else None
        except ValueError:
            out[str(item["file"])] = None
    return out


def unlisted(folder: Path, known: Mapping[str, object]) -> list[str]:
    """Files under the folder that look like music but are not in MPD's database: MPD could not read them."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            rel = path.relative_to(folder).as_posix()
            if rel not in known:
                out.append(rel)
    return out


def update_database(client: mpd.MPDClient, timeout_s: float = 600.0) -> None:
    """Let MPD find new and changed files first (incremental, its own job), and wait for it."""
    client.update()
    deadline = time.monotonic() + timeout_s
    while "updating_db" in client.status() and time.monotonic() < deadline:
        time.sleep(0.2)


class Scanner:
    def __init__(self, cfg: MusicConfig, client: mpd.MPDClient, tagger: Tagger, folder: Path) -> None:
        self.cfg = cfg
        self.client = client
        self.tagger = tagger
        self.folder = folder
        self.model = tagger.model_path.stem

    def run(self, progress: Callable[[int, int, str], None] | None = None) -> ScanResult:
        started = time.monotonic()
        if not self.folder.is_dir():
            raise ScanError(f"music folder {self.folder} does not exist (music.library_dir, or MPD's music_directory)")
        result = ScanResult()
        tracks = _tracks(self.client)
        result.tracks = len(tracks)
        if not tracks:
            raise ScanError(f"MPD's database has no tracks (music folder {self.folder}): nothing to analyse")
        example = next(iter(sorted(tracks)))
        if not any((self.folder / f).exists() for f in tracks):
            raise ScanError(
                f"music folder {self.folder} holds none of MPD's files (e.g. {example}): "
                "set music.library_dir to MPD's music_directory"
            )
        for file in unlisted(self.folder, tracks):
            log.warning("%s: MPD could not read it (not in its database), skipped", file)
            result.unlisted.append(file)
        done = _stickers(self.client, STICKER_FILE)
        tags = _stickers(self.client, STICKER_TAGS)
        moods = _stickers(self.client, STICKER_MOODS)
        weights = self.cfg.analysis.moods
        for i, (file, length) in enumerate(sorted(tracks.items())):
            if progress:
                progress(i, len(tracks), file)
            path = self.folder / file
            try:
                st = path.stat()
            except OSError:
                result.missing.append(file)
                continue
            stamp = {"size": st.st_size, "mtime": int(st.st_mtime), "model": self.model, "patches": self.cfg.analysis.patches}
            record = done.get(file)
            if isinstance(record, dict) and {k: record.get(k) for k in stamp} == stamp:
                if "error" in record:
                    result.broken.append(file)
                    continue
                known = scores_of(tags.get(file))
                if known is not None:
                    result.unchanged += 1
                    fresh = mood_scores(known, weights)
                    if moods.get(file) != fresh:
                        self._set(file, STICKER_MOODS, fresh)
                        result.reweighted += 1
                    result.tags[file], result.analysed[file] = known, fresh
                    continue
            heard = self._hear(file, path, length, stamp)
            if heard is None:
                result.broken.append(file)
                continue
            result.heard += 1
            result.tags[file], result.analysed[file] = heard, mood_scores(heard, weights)
        if progress:
            progress(len(tracks), len(tracks), "")
        result.seconds = time.monotonic() - started
        return result

    def _hear(self, file: str, path: Path, length: float | None, stamp: Mapping[str, object]) -> dict[str, float] | None:
        meta = self.tagger.meta
        try:
            audio = pieces(path, length, meta.patch_samples, meta.sample_rate, self.cfg.analysis.patches)
        except DecodeError as exc:
            log.warning("%s: does not decode, skipped (%s)", file, exc)
            self._set(file, STICKER_FILE, {**stamp, "error": str(exc)[:200]})  # not tried again until it changes
            return None
        tags = self.tagger.tags(audio)
        self._set(file, STICKER_TAGS, tags)
        self._set(file, STICKER_MOODS, mood_scores(tags, self.cfg.analysis.moods))
        self._set(file, STICKER_FILE, dict(stamp))  # last: the track counts as heard only now
        return tags

    def _set(self, file: str, name: str, value: object) -> None:
        self.client.sticker_set("song", file, name, json.dumps(value, separators=(",", ":")))
