"""How much the resampler moves musicnn's tag scores: synthetic 22.05 kHz tracks resampled to 16 kHz by ffmpeg
(the way the box decodes: ``ffmpeg -i in.wav -ac 1 -ar 16000 -f f32le -``), by librosa's default resampler
(soxr_hq) and, when resampy is installed, by resampy's kaiser_best (librosa.load's default in musicnn's era,
librosa 0.7), each tagged by the shipped LiteRT model.

    python -m model_export.musicnn_resample_check [--model device/moodbox/models/musicnn_msd.tflite]

Prints, per piece and over all, the largest absolute difference of any tag score between the resamplers,
per 3 s patch and for the track's mean (what musicnn's tagger reports). Needs ffmpeg, librosa and soundfile
(both from the export extra); TensorFlow is not needed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from model_export.musicnn_export import PIECES, SAMPLE_RATE, LiteModel, logmel, patches, synth_piece

REPO = Path(__file__).resolve().parent.parent
SOURCE_RATE = 22050


def ffmpeg_16k(wav: Path) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, dtype=np.float32)


def resampled(audio: np.ndarray, wav: Path) -> dict[str, np.ndarray]:
    import librosa

    out = {
        "ffmpeg": ffmpeg_16k(wav),
        "librosa soxr_hq": librosa.resample(audio, orig_sr=SOURCE_RATE, target_sr=SAMPLE_RATE).astype(np.float32),
    }
    try:
        import resampy  # noqa: F401
    except ImportError:
        print("resampy is not installed: kaiser_best left out", file=sys.stderr)
    else:
        out["resampy kaiser_best"] = librosa.resample(
            audio, orig_sr=SOURCE_RATE, target_sr=SAMPLE_RATE, res_type="kaiser_best"
        ).astype(np.float32)
    n = min(len(a) for a in out.values())
    return {name: a[:n] for name, a in out.items()}


def main(argv: list[str] | None = None) -> int:
    import soundfile

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "device" / "moodbox" / "models" / "musicnn_msd.tflite")
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args(argv)
    model = LiteModel(args.model, num_threads=1)
    version = subprocess.run(["ffmpeg", "-version"], check=True, capture_output=True, text=True).stdout.splitlines()[0]
    print(f"{version}; {len(PIECES)} synthetic {args.seconds:g} s pieces at {SOURCE_RATE} Hz; tag scores of {args.model.name}")
    worst: dict[str, float] = {}
    worst_mean: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in PIECES:
            audio = synth_piece(kind, sr=SOURCE_RATE, seconds=args.seconds, seed=11)
            wav = Path(tmp) / f"{kind}.wav"
            soundfile.write(wav, audio, SOURCE_RATE, subtype="FLOAT")
            scores = {name: model(patches(logmel(a))) for name, a in resampled(audio, wav).items()}
            ref = scores["ffmpeg"]
            for name, s in scores.items():
                if name == "ffmpeg":
                    continue
                d, dm = float(np.abs(s - ref).max()), float(np.abs(s.mean(0) - ref.mean(0)).max())
                worst[name], worst_mean[name] = max(worst.get(name, 0.0), d), max(worst_mean.get(name, 0.0), dm)
                print(
                    f"  {kind:16s} ffmpeg vs {name:20s} max |diff| per patch {d:.4f}, of the track mean {dm:.4f} ({len(ref)} patches)"
                )
            if "resampy kaiser_best" in scores:
                s, r = scores["resampy kaiser_best"], scores["librosa soxr_hq"]
                print(f"  {kind:16s} soxr_hq vs kaiser_best    max |diff| per patch {float(np.abs(s - r).max()):.4f}")
    for name in worst:
        print(f"all pieces: ffmpeg vs {name}: max |diff| per patch {worst[name]:.4f}, of the track mean {worst_mean[name]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
