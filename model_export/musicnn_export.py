"""Convert musicnn's MSD_musicnn music tagger (Pons & Serra, ISMIR 2019 LBD; ISC licence) to TFLite for LiteRT.

    python -m model_export.musicnn_export [--wheel PATH] [--out device/moodbox/models]

writes ``musicnn_msd.tflite``, ``musicnn_msd.json`` (labels, the log-mel recipe with its 96x257 mel
filterbank, tensor shapes, measured fidelity) and ``musicnn_LICENSE.txt``. The checkpoint comes from the
``musicnn==0.1.0`` wheel on PyPI, downloaded (without its dependencies) into ``.cache/musicnn/`` unless
``--wheel`` names one; nothing is downloaded on the device.

The wheel carries TensorFlow 1.12 checkpoints. The original training graph is read from the checkpoint's
``.meta`` (tf.compat.v1.train.import_meta_graph cannot import it whole with TF 2.x: the stored shapes of its
gradient ops disagree with today's shape inference, so only the inference subgraph up to ``model/Sigmoid``
is kept), its variables are replaced by the checkpoint's values, and the ``is_training`` placeholder by a
constant False (batch norm from its moving statistics, no dropout). The output is that sigmoid: exactly
the per-patch tag likelihoods musicnn's extractor/tagger reports.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Final

import numpy as np

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "musicnn"
WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
MODEL = "MSD_musicnn"

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as musicnn's extractor
N_TAGS = 50
MAX_BYTES = 5_000_000
TOLERANCE = 0.01  # every tag score within this of the original graph's

# Tensor names in MSD_musicnn/.meta (TF 1.12): the spectrogram patches, the labels (training only) and
# is_training, all under the name scope "model" musicnn's extractor uses too.
INPUT_NAME = "model/Placeholder"
IS_TRAINING_NAME = "model/Placeholder_2"
OUTPUT_NAME = "model/Sigmoid"

SOURCE = (
    "musicnn 0.1.0 (PyPI wheel) MSD_musicnn: Jordi Pons & Xavier Serra, 'musicnn: pre-trained convolutional "
    "neural networks for music audio tagging', ISMIR 2019 late-breaking/demo; https://github.com/jordipons/musicnn; "
    "trained on the Million Song Dataset's 50 most frequent Last.fm tags"
)
PAD_MODE: Final = "reflect"  # librosa <= 0.9 (musicnn's era, 0.7) padded centred frames by reflection; 0.10+ pads zeros

ISC_FALLBACK = (
    "ISC License\n\nCopyright (c) 2019, Jordi Pons\n\n"
    "Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby "
    "granted, provided that the above copyright notice and this permission notice appear in all copies.\n\n"
    'THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING '
    "ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, "
    "DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, "
    "WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE "
    "USE OR PERFORMANCE OF THIS SOFTWARE.\n"
)


# -- the wheel ---------------------------------------------------------------------------------------------


def fetch_wheel(cache: Path = CACHE) -> Path:
    """The musicnn 0.1.0 wheel, from ``cache`` or downloaded there with pip (no dependencies)."""
    found = sorted(cache.glob("musicnn-0.1.0-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(cache), "musicnn==0.1.0"]
    log.info("downloading: %s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    found = sorted(cache.glob("musicnn-0.1.0-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download left no musicnn-0.1.0 wheel in {cache}")
    return found[0]


def unpack(wheel: Path, dest: Path) -> Path:
    """Unzip MSD_musicnn's checkpoint, configuration.py and the licence from ``wheel`` into ``dest``; the
    checkpoint prefix (the files are named ``.meta``, ``.index``, ... with an empty stem) is ``dest/MSD_musicnn/``."""
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if (
                name.startswith(f"musicnn/{MODEL}/")
                or name == "musicnn/configuration.py"
                or (".dist-info/" in name and name.rsplit("/", 1)[-1] in ("LICENSE", "LICENSE.md", "LICENSE.txt", "METADATA"))
            ):
                z.extract(name, dest)
    ckpt = dest / "musicnn" / MODEL
    if not (ckpt / ".meta").is_file() or not (ckpt / ".index").is_file():
        raise FileNotFoundError(f"{wheel} holds no {MODEL} checkpoint")
    return ckpt


def configuration(unpacked: Path) -> dict[str, Any]:
    """musicnn's configuration.py constants (SR, FFT_HOP, FFT_SIZE, N_MELS, MSD_LABELS, ...), read without running it."""
    tree = ast.parse((unpacked / "musicnn" / "configuration.py").read_text())
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def licence_text(unpacked: Path) -> tuple[str, str]:
    """(text, where it came from): the wheel's own licence file, else the ISC text of the upstream repository."""
    for path in sorted(unpacked.glob("*.dist-info/LICENSE*")):
        text = path.read_text().strip()
        if text:
            return (
                "musicnn (https://github.com/jordipons/musicnn), ISC licence, as shipped in the musicnn 0.1.0 wheel "
                f"({path.parent.name}/{path.name}):\n\n{text}\n",
                f"wheel {path.parent.name}/{path.name}",
            )
    return ISC_FALLBACK, "ISC text with the upstream copyright line (no licence file in the wheel)"


# -- the graph ---------------------------------------------------------------------------------------------


def frozen_graph(ckpt: Path) -> Any:
    """The inference part of the original training graph (``.meta``) with every variable replaced by its
    checkpoint value: a GraphDef from ``model/Placeholder`` (patches) and ``model/Placeholder_2``
    (is_training) to ``model/Sigmoid``."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((ckpt / ".meta").read_bytes())
    graph_def = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, [OUTPUT_NAME])
    # the checkpoint file names a path on the author's machine: open the prefix itself
    reader = tf.compat.v1.train.NewCheckpointReader(str(ckpt) + "/")
    for node in graph_def.node:
        node.attr.pop("_output_shapes", None)  # TF 1.12's recorded shapes; TF 2 infers its own
        node.device = ""
        if node.op in ("VariableV2", "Variable", "VarHandleOp"):
            value = reader.get_tensor(node.name)
            node.op = "Const"
            for key in list(node.attr):
                del node.attr[key]
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return graph_def


class OriginalGraph:
    """The original float32 graph run in a TF1 session exactly as musicnn's extractor runs it
    (``feed_dict={x: patches, is_training: False}``, ``sigmoid(logits)``)."""

    def __init__(self, graph_def: Any) -> None:
        import tensorflow as tf

        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.x = self.graph.get_tensor_by_name(INPUT_NAME + ":0")
        self.is_training = self.graph.get_tensor_by_name(IS_TRAINING_NAME + ":0")
        self.y = self.graph.get_tensor_by_name(OUTPUT_NAME + ":0")

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(self.y, feed_dict={self.x: patches.astype(np.float32), self.is_training: False}))

    def close(self) -> None:
        self.session.close()


def convert(graph_def: Any, weights: str) -> bytes:
    """TFLite of the frozen graph for one [1, 187, 96] patch, is_training fixed False, with float16 or
    dynamic-range int8 weights."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, PATCH_FRAMES, N_MELS], name="logmel")
        (y,) = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={INPUT_NAME: x, IS_TRAINING_NAME: tf.constant(False)},
            return_elements=[OUTPUT_NAME + ":0"],
            name="musicnn",
        )
        tags = tf.identity(y, name="tags")
        with tf.compat.v1.Session(graph=graph) as sess:
            converter = tf.compat.v1.lite.TFLiteConverter.from_session(sess, [x], [tags])
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if weights == "float16":
                converter.target_spec.supported_types = [tf.float16]
            elif weights != "int8-dynamic":
                raise ValueError(f"weights must be 'float16' or 'int8-dynamic', not {weights!r}")
            return bytes(converter.convert())


class LiteModel:
    """A converted model in LiteRT, one patch at a time."""

    def __init__(self, model: bytes | Path, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, Path):
            self.interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        else:
            self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        out = []
        for patch in patches:
            self.interpreter.set_tensor(self.input["index"], patch[None].astype(np.float32))
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output["index"])[0].copy())
        return np.stack(out)


# -- audio ---------------------------------------------------------------------------------------------------


def mel_filterbank() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=512, n_mels=96): Slaney mel scale, Slaney (area) norm; [96, 257]."""
    import librosa

    return np.asarray(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS), dtype=np.float32)


def logmel(audio: np.ndarray) -> np.ndarray:
    """musicnn's log-mel spectrogram [frames, 96] of 16 kHz mono audio, as its extractor computes it but with
    the log taken in float32 (the extractor casts to float16 first, where 10000*x overflows to inf above
    x = 6.55 and the tags come out NaN) and with librosa <= 0.9's reflect padding."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS, pad_mode=PAD_MODE
    ).T
    return np.log10(10000.0 * mel.astype(np.float32) + 1.0).astype(np.float32)


def patches(rep: np.ndarray, hop: int = PATCH_FRAMES) -> np.ndarray:
    """Consecutive [187, 96] patches of a log-mel spectrogram, as musicnn's batch_data (no overlap by default)."""
    starts = range(0, rep.shape[0] - PATCH_FRAMES + 1, hop)
    return np.stack([rep[s : s + PATCH_FRAMES] for s in starts]).astype(np.float32)


PIECES = ("bright_fast", "slow_soft", "noisy_distorted")


def synth_piece(kind: str, sr: int = SAMPLE_RATE, seconds: float = 9.0, seed: int = 0) -> np.ndarray:
    """A few seconds of synthetic music (float32 mono in [-1, 1]): chords of harmonic tones over a bass
    line, a beat of kick, snare and hats, and noise. ``bright_fast``: major chords with many harmonics at 140
    BPM; ``slow_soft``: quiet minor pads, a soft pulse at 60 BPM; ``noisy_distorted``: power chords through a
    clipping distortion with loud noise at 110 BPM."""
    if kind not in PIECES:
        raise ValueError(f"kind must be one of {PIECES}, not {kind!r}")
    rng = np.random.default_rng(seed + PIECES.index(kind))
    n = int(sr * seconds)
    t = np.arange(n) / sr
    bpm, level, harmonics, noise = {
        "bright_fast": (140.0, 0.25, 10, 0.02),
        "slow_soft": (60.0, 0.08, 3, 0.004),
        "noisy_distorted": (110.0, 0.3, 6, 0.12),
    }[kind]
    chords = {
        "bright_fast": [(60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67)],
        "slow_soft": [(57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59)],
        "noisy_distorted": [(40, 47, 52), (43, 50, 55), (45, 52, 57), (38, 45, 50)],
    }[kind]
    beat = 60.0 / bpm
    bar = 4 * beat
    out = np.zeros(n)
    for i in range(int(np.ceil(seconds / bar))):
        s0, s1 = int(i * bar * sr), min(n, int((i + 1) * bar * sr))
        if s0 >= n:
            break
        tt = t[s0:s1] - t[s0]
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt / (bar * (1.5 if kind == "slow_soft" else 0.6)))
        chord = chords[i % len(chords)]
        for midi in (*chord, chord[0] - 12):
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            for h in range(1, harmonics + 1):
                if f0 * h < sr / 2 - 500:
                    out[s0:s1] += env * np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 2 * np.pi)) / h**1.2
    out *= level / max(1e-9, np.max(np.abs(out)))
    # the beat: a pitched-down kick on beats 1 and 3, a noisy snare on 2 and 4, hats on every eighth
    eighth = beat / 2
    for k in range(int(seconds / eighth)):
        s0 = int(k * eighth * sr)
        m = min(n - s0, int(0.25 * sr))
        if m <= 0:
            break
        tt = np.arange(m) / sr
        if k % 4 == 0:
            out[s0 : s0 + m] += 0.5 * level * np.sin(2 * np.pi * (50 + 100 * np.exp(-tt / 0.03)) * tt) * np.exp(-tt / 0.12)
        elif k % 4 == 2:
            out[s0 : s0 + m] += 0.3 * level * rng.standard_normal(m) * np.exp(-tt / 0.06)
        hat = rng.standard_normal(m)
        hat = np.diff(hat, prepend=0.0)  # high-passed noise
        out[s0 : s0 + m] += 0.08 * level * hat * np.exp(-tt / 0.015)
    out += noise * rng.standard_normal(n)
    if kind == "noisy_distorted":
        out = np.tanh(6.0 * out) * 0.7
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synth_patches() -> tuple[np.ndarray, str]:
    """The fidelity audio: every synthetic piece's log-mel patches, plus a description of them."""
    reps = [patches(logmel(synth_piece(kind))) for kind in PIECES]
    audio = f"{sum(len(r) for r in reps)} patches of 3 s from three synthetic 9 s pieces at 16 kHz ({', '.join(PIECES)})"
    return np.concatenate(reps), audio


# -- export ---------------------------------------------------------------------------------------------------


def build_metadata(
    *, labels: list[str], filterbank: np.ndarray, weights: str, max_abs_diff: float, audio: str, tf_version: str
) -> dict[str, Any]:
    if len(labels) != N_TAGS:
        raise ValueError(f"{len(labels)} labels, expected {N_TAGS}")
    if filterbank.shape != (N_MELS, N_FFT // 2 + 1):
        raise ValueError(f"filterbank shape {filterbank.shape}, expected {(N_MELS, N_FFT // 2 + 1)}")
    return {
        "name": "musicnn_msd",
        "source": SOURCE,
        "licence": "ISC",
        "labels": list(labels),
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP,
        "n_mels": N_MELS,
        "patch_frames": PATCH_FRAMES,
        "window": "hann",
        "center": True,
        "pad_mode": PAD_MODE,
        "pad_mode_note": (
            "frames are centred: the signal is padded by n_fft/2 samples at each end by reflection, as librosa "
            "<= 0.9 did by default (musicnn 0.1.0 needed librosa >= 0.7 and computed its training data with it); "
            "librosa 0.10+ defaults to zeros ('constant'). Only the first and last frame of a stream differ."
        ),
        "power": 2.0,
        "log": "log10(10000*x+1)",
        "log_note": "computed in float32 (musicnn's extractor casts to float16 first, which overflows to inf for x > 6.55)",
        "mel_filterbank": [[float(f"{v:.7g}") + 0.0 for v in row] for row in filterbank.tolist()],
        "mel_filterbank_note": "librosa.filters.mel(sr=16000, n_fft=512, n_mels=96): Slaney scale and area norm; "
        "mel = filterbank @ |STFT|^2, STFT with a periodic Hann window of 512 samples, hop 256",
        "input": {"shape": [1, PATCH_FRAMES, N_MELS], "dtype": "float32", "layout": "[batch, frames (time), mel bands]"},
        "output": {"shape": [1, N_TAGS], "activation": "sigmoid", "dtype": "float32"},
        "weights": weights,
        "fidelity": {"max_abs_diff": float(max_abs_diff), "audio": audio},
        "tensorflow": tf_version,
    }


def metadata_json(meta: dict[str, Any]) -> str:
    """The metadata as indented JSON, each filterbank row on one line (not one number per line)."""
    rows = meta["mel_filterbank"]
    text = json.dumps({**meta, "mel_filterbank": "@ROWS@"}, indent=1)
    return text.replace('"@ROWS@"', "[\n  " + ",\n  ".join(json.dumps(r) for r in rows) + "\n ]") + "\n"


def export(wheel: Path | None, out: Path, work: Path = CACHE) -> dict[str, Any]:
    import tensorflow as tf

    wheel = wheel or fetch_wheel()
    unpacked = work / "unpacked"
    ckpt = unpack(wheel, unpacked)
    conf = configuration(unpacked)
    recipe = {"SR": SAMPLE_RATE, "FFT_HOP": HOP, "FFT_SIZE": N_FFT, "N_MELS": N_MELS}
    for key, want in recipe.items():
        if conf.get(key) != want:
            raise ValueError(f"musicnn's configuration.py has {key} = {conf.get(key)!r}, this exporter expects {want}")
    labels = list(conf["MSD_LABELS"])

    graph_def = frozen_graph(ckpt)
    original = OriginalGraph(graph_def)
    data, audio = synth_patches()
    rng = np.random.default_rng(0)
    # plus a few extremes: silence, and random patches spread over the range real audio's log-mel covers
    extremes = np.concatenate([np.zeros((1, PATCH_FRAMES, N_MELS)), rng.uniform(0, 4, (2, PATCH_FRAMES, N_MELS))])
    data = np.concatenate([data, extremes.astype(np.float32)])
    audio += ", a silent patch and 2 uniform-random patches in [0, 4]"
    reference = original(data)
    original.close()
    if not np.all(np.isfinite(reference)):
        raise RuntimeError("the original graph gave non-finite scores")

    chosen: tuple[str, bytes, float] | None = None
    for weights in ("int8-dynamic", "float16"):
        model = convert(graph_def, weights)
        diff = float(np.max(np.abs(LiteModel(model)(data) - reference)))
        log.info("%s weights: %d bytes, max abs tag-score difference %.5f", weights, len(model), diff)
        if diff <= TOLERANCE and len(model) <= MAX_BYTES:
            chosen = (weights, model, diff)
            break
    if chosen is None:
        raise RuntimeError(f"no weight type kept every tag within {TOLERANCE} in {MAX_BYTES} bytes")
    weights, model, diff = chosen

    out.mkdir(parents=True, exist_ok=True)
    (out / "musicnn_msd.tflite").write_bytes(model)
    meta = build_metadata(
        labels=labels, filterbank=mel_filterbank(), weights=weights, max_abs_diff=diff, audio=audio, tf_version=tf.__version__
    )
    (out / "musicnn_msd.json").write_text(metadata_json(meta))
    text, origin = licence_text(unpacked)
    (out / "musicnn_LICENSE.txt").write_text(text)
    log.info(
        "wrote %s (%d bytes, %s weights, max abs diff %.5f); licence from %s",
        out / "musicnn_msd.tflite",
        len(model),
        weights,
        diff,
        origin,
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wheel", type=Path, help="a musicnn-0.1.0 wheel (default: pip download into .cache/musicnn/)")
    p.add_argument("--out", type=Path, default=REPO / "device" / "moodbox" / "models", help="output folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.monotonic()
    meta = export(args.wheel, args.out)
    print(
        f"{meta['name']}: {meta['weights']} weights, max abs diff {meta['fidelity']['max_abs_diff']:.5f} ({time.monotonic() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
