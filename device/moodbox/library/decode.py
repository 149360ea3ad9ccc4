"""Audio from the owner's files, decoded by ffmpeg (Debian's package) to mono float samples at the
tagger's rate: only the few pieces the tagger hears, each found by ffmpeg's own seek, so a long track
costs no more than a short one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

SECONDS_PER_CALL = 30.0  # a piece that takes longer to decode is a hung decoder, not a slow one


class DecodeError(Exception):
    """The file does not decode; the message is ffmpeg's reason, in one line."""


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise FileNotFoundError("ffmpeg is not installed: apt-get install ffmpeg")
    return path


def _reason(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no audio in it"


def duration(path: Path) -> float | None:
    """The track's length in seconds from ffprobe, or None when it cannot tell."""
    probe = shutil.which("ffprobe")
    if probe is None:
        return None
    try:
        out = subprocess.run(
            [probe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            capture_output=True,
            timeout=SECONDS_PER_CALL,
            check=False,
        )
        return float(out.stdout.decode().strip())
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return None


def piece(path: Path, start_s: float, samples: int, rate: int) -> np.ndarray:
    """Up to ``samples`` mono float32 samples at ``rate`` from ``start_s`` on (fewer near the end)."""
    cmd = [
        ffmpeg(),
        "-nostdin",
        "-v",
        "error",
        "-threads",
        "1",
        "-ss",
        f"{max(0.0, start_s):.3f}",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-t",
        f"{samples / rate + 0.05:.3f}",
        "-f",
        "f32le",
        "-",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=SECONDS_PER_CALL, check=False)
    except subprocess.TimeoutExpired:
        raise DecodeError(f"ffmpeg took over {SECONDS_PER_CALL:.0f} s") from None
    audio = np.frombuffer(out.stdout[: len(out.stdout) // 4 * 4], dtype="<f4")
    if out.returncode != 0 or not len(audio):
        raise DecodeError(_reason(out.stderr))
    return audio[:samples].astype(np.float32)


def starts(length_s: float | None, piece_s: float, count: int) -> list[float]:
    """Where the pieces begin: spread evenly over the track, clear of its first and last seconds; one
    piece from the start when the length is unknown or too short for more."""
    if not length_s or length_s <= piece_s:
        return [0.0]
    n = max(1, min(count, int(length_s // piece_s)))
    return [round(max(0.0, min(length_s - piece_s, length_s * (i + 1) / (n + 1) - piece_s / 2)), 3) for i in range(n)]


def pieces(path: Path, length_s: float | None, samples: int, rate: int, count: int) -> list[np.ndarray]:
    """``count`` pieces of ``samples`` spread over the track (fewer for a short one)."""
    if length_s is None:
        length_s = duration(path)
    return [piece(path, s, samples, rate) for s in starts(length_s, samples / rate, count)]
