"""The library scan's cost, measured (issue 28's targets): a generated library of N tracks (sox: chords,
a beat and noise, 30 s each, Ogg Vorbis; cached in .cache/scanbench), a private MPD with stickers, then
``moodbox library scan`` twice. Reports CPU seconds per track (the scan and its ffmpeg children, one
thread), its peak resident memory, and the wall time of the second scan of the unchanged library.

    python -m devtools.scanbench [--tracks 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from devtools.servers import Mpd, _require

NOTES = ["C", "D", "E", "F", "G", "A", "B"]


def make_tracks(folder: Path, count: int, seconds: int = 30) -> None:
    sox = _require("sox")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"track{i:04d}.ogg"
        if path.exists():
            continue
        rng = random.Random(i)
        chord = [f"{rng.choice(NOTES)}{rng.choice([2, 3, 4])}" for _ in range(3)]
        voices = [
            arg for note in chord for arg in (rng.choice(["pluck", "sine", "square", "triangle"]), f"%{NOTES.index(note[0]) - 9}")
        ]
        cmd = [sox, "-n", "-r", "22050", "-c", "1", "-C", "2", str(path), "synth", str(seconds), *voices, "pinknoise"]
        cmd += ["tremolo", str(rng.uniform(1.5, 3.0)), "60", "gain", "-n", "-3"]
        subprocess.run(cmd, check=True, capture_output=True)


def scan(cfg: Path) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the scan and its children, peak RSS in kB of the largest child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "moodbox", "library", "scan", "--config", str(cfg)], capture_output=True, text=True
    )
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"scanbench: the scan failed ({out.returncode}): {out.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    music = Path(".cache/scanbench") / f"music{args.tracks}"
    make_tracks(music, args.tracks)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "playlists").mkdir()
        with Mpd(work / "mpd", music.resolve(), work / "playlists") as server:
            cfg = work / "moodbox.yaml"
            music_cfg = {
                "mpd": {"host": "127.0.0.1", "port": server.port},
                "library_dir": str(music.resolve()),
                "state_dir": str(work / "state"),
            }
            cfg.write_text(yaml.safe_dump({"music": music_cfg}))
            wall1, cpu1, rss, out1 = scan(cfg)
            wall2, _, _, out2 = scan(cfg)
    figures = {
        "tracks": args.tracks,
        "first_scan_s": round(wall1, 1),
        "cpu_s_per_track": round(cpu1 / args.tracks, 3),
        "peak_rss_mb": round(rss / 1024, 1),
        "second_scan_s": round(wall2, 2),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(out1.strip())
        print(
            f"scanbench: {args.tracks} tracks: first scan {wall1:.1f} s, {cpu1 / args.tracks:.3f} s of CPU a track "
            f"(target <= 1), peak memory {rss / 1024:.0f} MB (target <= 150); second scan {wall2:.2f} s (target <= 5)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
