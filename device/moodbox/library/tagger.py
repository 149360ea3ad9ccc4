"""The music tagger: musicnn's MSD model on LiteRT, with the log-mel front end computed in numpy from
the numbers in its metadata JSON (so the Pi needs neither librosa nor TensorFlow). model_export/README.md
says how the model was converted and how closely it reproduces the original graph."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodbox.vision.native import quiet_native_info

DEFAULT_TAGGER = Path(__file__).parents[1] / "models" / "musicnn_msd.tflite"


class TaggerError(RuntimeError):
    """The tagger model or its metadata cannot be used; the message names the file."""


@dataclass(frozen=True)
class TaggerMeta:
    labels: tuple[str, ...]
    sample_rate: int
    n_fft: int
    hop_length: int
    patch_frames: int
    filterbank: np.ndarray  # (n_mels, n_fft // 2 + 1)

    @property
    def patch_samples(self) -> int:
        """Samples that give exactly ``patch_frames`` frames without padding (interior frames, as
        musicnn's centred STFT of a whole track has them)."""
        return (self.patch_frames - 1) * self.hop_length + self.n_fft

    @classmethod
    def load(cls, path: Path) -> TaggerMeta:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise TaggerError(f"{path}: tagger metadata not found (it must sit beside the .tflite)") from None
        except (OSError, ValueError) as exc:
            raise TaggerError(f"{path}: cannot read tagger metadata: {exc}") from None
        try:
            meta = cls(
                labels=tuple(str(x) for x in raw["labels"]),
                sample_rate=int(raw["sample_rate"]),
                n_fft=int(raw["n_fft"]),
                hop_length=int(raw["hop_length"]),
                patch_frames=int(raw["patch_frames"]),
                filterbank=np.asarray(raw["mel_filterbank"], dtype=np.float32),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TaggerError(f"{path}: malformed tagger metadata ({exc!r}); see model_export/README.md") from None
        if meta.filterbank.ndim != 2 or meta.filterbank.shape[1] != meta.n_fft // 2 + 1 or not meta.labels:
            raise TaggerError(f"{path}: mel_filterbank must be n_mels x (n_fft/2+1) and labels non-empty")
        return meta


def log_mel(audio: np.ndarray, meta: TaggerMeta) -> np.ndarray:
    """(frames, n_mels) of ``log10(10000 x + 1)`` over the power mel spectrogram, frames taken without
    padding. In float32 throughout: musicnn's own float16 cast overflows under NumPy 2."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < meta.n_fft:
        audio = np.pad(audio, (0, meta.n_fft - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, meta.n_fft)[:: meta.hop_length]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(meta.n_fft) / meta.n_fft)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32) ** 2
    mel = power @ meta.filterbank.T
    return np.log10(10000.0 * mel + 1.0, dtype=np.float32)


class Tagger:
    """One LiteRT interpreter, one thread: ``tags`` of a few patches of a track, averaged.

    LiteRT's own kernels, not its default XNNPACK delegate: on this model XNNPACK is 2.5x faster (48 against
    121 ms a patch on an x86 core) but takes 113 MB more memory, and the scan runs beside the music on a
    small box; both agree with the original graph within 0.003 (model_export/README.md)."""

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        self.model_path = model_path or DEFAULT_TAGGER
        if not self.model_path.is_file():
            raise TaggerError(f"{self.model_path}: tagger model not found")
        self.meta = TaggerMeta.load(self.model_path.with_suffix(".json"))
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:  # older Pi images
            try:
                from tflite_runtime.interpreter import Interpreter, OpResolverType
            except ImportError:
                raise TaggerError("no TFLite interpreter installed: pip install ai-edge-litert") from None
        try:
            self._interp = Interpreter(
                model_path=str(self.model_path),
                num_threads=threads,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            with quiet_native_info():
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TaggerError(f"{self.model_path}: LiteRT cannot load it: {exc}") from None
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        shape = tuple(self._in["shape"])
        if shape[-1] != self.meta.filterbank.shape[0] or shape[-2] != self.meta.patch_frames:
            raise TaggerError(f"{self.model_path}: input {shape} does not match its metadata")
        if self._out["shape"][-1] != len(self.meta.labels):
            raise TaggerError(f"{self.model_path}: {self._out['shape'][-1]} outputs for {len(self.meta.labels)} labels")

    def patch_scores(self, audio: np.ndarray) -> np.ndarray:
        """The tag scores (sigmoid) of one patch of ``meta.patch_samples`` samples (shorter is zero-padded)."""
        n = self.meta.patch_samples
        audio = audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))
        mel = log_mel(audio, self.meta)[: self.meta.patch_frames]
        self._interp.set_tensor(self._in["index"], mel[np.newaxis].astype(np.float32))
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out["index"])[0], dtype=np.float64)

    def tags(self, patches: list[np.ndarray]) -> dict[str, float]:
        """label -> mean score over the patches."""
        mean = np.mean([self.patch_scores(p) for p in patches], axis=0)
        return {label: round(float(s), 4) for label, s in zip(self.meta.labels, mean)}
