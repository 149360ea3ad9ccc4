"""``moodbox library scan``: the command around the scanner, at low priority, with a progress bar on
a terminal and a summary at the end (README, "Music").

Exit codes: 0 the scan finished (a file that does not decode is named and skipped); 1 it cannot run or
found nothing to analyse (MPD unreachable or without stickers, no music folder, no track, ffmpeg
missing); 2 the configuration or the tagger model is wrong; 130 stopped by Ctrl-C (the next scan goes on
from there).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import TextIO

from moodbox.config import Config
from moodbox.library import status
from moodbox.library.scan import ScanError, Scanner, ScanResult, library_dir, update_database
from moodbox.library.tagger import Tagger, TaggerError
from moodbox.music.mpdlink import CONNECTION_ERRORS, PasswordError, close, connect, where
from moodbox.settings import default_state_dir

EXIT_OK, EXIT_INPUT, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
NICENESS = 10


class Progress:
    """A one-line bar on a terminal; nothing when stderr is a file or a pipe (the nightly timer's log)."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.on = out.isatty()
        self.at = 0
        self._drawn = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        """A log line (a file that does not decode) starts on a clean line, not after the bar."""
        if self.on and self._drawn:
            self.out.write("\r\033[K")
            self._drawn = 0.0
        return True

    def __call__(self, i: int, n: int, file: str) -> None:
        self.at = i
        now = time.monotonic()
        if not self.on or (now - self._drawn < 0.1 and i < n):
            return
        self._drawn = now
        width = shutil.get_terminal_size((80, 20)).columns
        filled = int(30 * i / max(1, n))
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {i}/{n} {file}"
        self.out.write("\r\033[K" + line[: width - 1])
        if i >= n:
            self.out.write("\r\033[K")
        self.out.flush()


def lower_priority() -> None:
    """Music first: the scan yields the CPU to MPD and the vision pipeline (one thread, nice 10)."""
    try:
        if os.nice(0) < NICENESS:
            os.nice(NICENESS - os.nice(0))
    except OSError:
        pass


def summary(result: ScanResult, folder: object) -> str:
    lines = [
        f"library scan: {result.tracks} tracks in {result.seconds:.1f} s: {result.heard} heard now, "
        f"{result.unchanged} unchanged ({result.reweighted} with new mood scores), "
        f"{len(result.broken) + len(result.unlisted)} do not decode, {len(result.missing)} not found under {folder}"
    ]
    per_mood = result.per_mood()
    if per_mood:
        lines.append("tracks per mood: " + ", ".join(f"{m} {n}" for m, n in per_mood.most_common()))
        lines.append("top tags: " + ", ".join(f"{t} {s:.2f}" for t, s in result.top_tags()))
    return "\n".join(lines)


def scan(cfg: Config) -> int:
    lower_priority()
    analysis = cfg.music.analysis
    try:
        tagger = Tagger(analysis.model, threads=1)
    except TaggerError as exc:
        print(f"error: {exc} (music.analysis.model)", file=sys.stderr)
        return EXIT_CONFIG
    labels = set(tagger.meta.labels)
    unknown = {m: sorted(set(ws) - labels) for m, ws in analysis.moods.items() if set(ws) - labels}
    if unknown:
        mood, tags = next(iter(unknown.items()))
        print(f"error: music.analysis.moods.{mood}: {', '.join(tags)} not among the tagger's labels", file=sys.stderr)
        return EXIT_CONFIG
    if shutil.which("ffmpeg") is None:
        print("error: ffmpeg is not installed (apt-get install ffmpeg): the scan decodes with it", file=sys.stderr)
        return EXIT_INPUT
    mpd_at = where(cfg.music.mpd)
    try:
        client = connect(cfg.music.mpd)
    except PasswordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except CONNECTION_ERRORS as exc:
        print(f"error: cannot reach MPD at {mpd_at}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    progress = Progress()
    for handler in logging.getLogger().handlers:
        handler.addFilter(progress)
    try:
        update_database(client)
        folder = library_dir(cfg.music, client)
        try:
            result = Scanner(cfg.music, client, tagger, folder).run(progress)
        except ScanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        except KeyboardInterrupt:
            print(f"\nscan stopped after {progress.at} tracks: run it again to go on from there", file=sys.stderr)
            return EXIT_INTERRUPTED
    except CONNECTION_ERRORS as exc:
        print(f"error: lost MPD at {mpd_at}: {exc} (the tracks heard so far are kept)", file=sys.stderr)
        return EXIT_INPUT
    finally:
        close(client)
    status.write(cfg.music.state_dir or default_state_dir(), len(result.analysed), result.tracks)
    print(summary(result, folder))
    if not result.analysed:
        print("error: no track could be analysed (see the lines above)", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK
