"""The shipped musicnn music tagger (device/moodbox/models/musicnn_msd.*, made by model_export/musicnn_export.py):
its metadata contract and LiteRT model, and its agreement with musicnn's original TensorFlow graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_export.musicnn_export import PIECES, fetch_wheel, logmel, patches, synth_piece
from tests.util import require_keras

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "device" / "moodbox" / "models"
TFLITE = MODELS / "musicnn_msd.tflite"
META = MODELS / "musicnn_msd.json"
REQUIRED = (
    "name source licence labels sample_rate n_fft hop_length n_mels patch_frames window center pad_mode power log "
    "mel_filterbank input output weights fidelity tensorflow"
).split()


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads(META.read_text())


def interpreter(num_threads: int | None = 1, xnnpack: bool = True):
    """LiteRT with its default XNNPACK delegate, or (xnnpack False) with its own kernels alone, as
    moodbox library scan runs it (moodbox.library.tagger says why)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=str(TFLITE), num_threads=num_threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    return it


def tags(it, patch: np.ndarray) -> np.ndarray:
    it.set_tensor(it.get_input_details()[0]["index"], patch[None].astype(np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[0].copy()


def numpy_logmel(audio: np.ndarray, meta: dict) -> np.ndarray:
    """The log-mel spectrogram from the metadata alone, in numpy (what the Pi does, without librosa)."""
    n_fft, hop = meta["n_fft"], meta["hop_length"]
    y = np.pad(audio.astype(np.float32), n_fft // 2, mode=meta["pad_mode"]) if meta["center"] else audio
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = y[np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann, as librosa's
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** meta["power"]
    mel = power.astype(np.float32) @ np.asarray(meta["mel_filterbank"], dtype=np.float32).T
    return np.log10(10000.0 * mel + 1.0).astype(np.float32)


# -- without TensorFlow ----------------------------------------------------------------------------------------


def test_metadata_has_every_key_and_the_recipe(meta):
    assert [k for k in REQUIRED if k not in meta] == []
    assert meta["name"] == "musicnn_msd" and meta["licence"] == "ISC"
    assert (
        "musicnn 0.1.0" in meta["source"] and "MSD_musicnn" in meta["source"] and "github.com/jordipons/musicnn" in meta["source"]
    )
    assert len(meta["labels"]) == 50 and len(set(meta["labels"])) == 50
    assert meta["labels"][:3] == ["rock", "pop", "alternative"] and meta["labels"][-1] == "happy"
    assert (meta["sample_rate"], meta["n_fft"], meta["hop_length"], meta["n_mels"], meta["patch_frames"]) == (
        16000,
        512,
        256,
        96,
        187,
    )
    assert meta["window"] == "hann" and meta["center"] is True and meta["pad_mode"] in ("reflect", "constant")
    assert meta["power"] == 2.0 and meta["log"] == "log10(10000*x+1)"
    fb = np.asarray(meta["mel_filterbank"], dtype=np.float64)
    assert fb.shape == (96, 257) and np.all(np.isfinite(fb)) and fb.min() >= 0 and np.all(fb.sum(axis=1) > 0)
    assert meta["input"] == {**meta["input"], "shape": [1, 187, 96], "dtype": "float32"}
    assert meta["output"]["shape"] == [1, 50] and meta["output"]["activation"] == "sigmoid"
    assert meta["weights"] in ("float16", "int8-dynamic")
    assert 0 <= meta["fidelity"]["max_abs_diff"] <= 0.01 and meta["fidelity"]["audio"]


def test_licence_file_is_shipped():
    text = (MODELS / "musicnn_LICENSE.txt").read_text()
    assert "Permission to use, copy, modify, and/or distribute this software" in text and "Jordi Pons" in text


def test_model_file_is_at_most_5_mb():
    assert TFLITE.stat().st_size <= 5_000_000


def test_litert_tensors_match_the_metadata(meta):
    it = interpreter()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    assert inp["shape"].tolist() == meta["input"]["shape"] and inp["dtype"] == np.float32
    assert out["shape"].tolist() == meta["output"]["shape"] and out["dtype"] == np.float32


@pytest.mark.parametrize("kind", PIECES)
def test_scores_on_a_synthesised_patch_are_finite_probabilities_with_one_thread(meta, kind):
    rep = numpy_logmel(synth_piece(kind, seconds=3.5, seed=3), meta)
    patch = rep[: meta["patch_frames"]]
    assert patch.shape == (187, 96)
    scores = tags(interpreter(num_threads=1), patch)
    assert scores.shape == (50,) and np.all(np.isfinite(scores)) and scores.min() >= 0 and scores.max() <= 1
    assert scores.max() - scores.min() > 0.01  # the tags differ: not a constant output


# -- with librosa / TensorFlow ---------------------------------------------------------------------------------


def _librosa():
    return pytest.importorskip("librosa", reason="librosa (the export extra) is not installed: scripts/setup --all")


def test_numpy_logmel_from_the_metadata_reproduces_librosa(meta):
    _librosa()
    for kind in PIECES:
        audio = synth_piece(kind, seconds=4.0, seed=5)
        ours, theirs = numpy_logmel(audio, meta), logmel(audio)
        assert ours.shape == theirs.shape
        assert np.max(np.abs(ours - theirs)) < 1e-3, kind


def test_float32_log_stays_finite_where_musicnns_float16_cast_overflows():
    librosa = _librosa()
    audio = synth_piece("noisy_distorted", seconds=4.0)
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect")
    assert mel.max() > np.finfo(np.float16).max / 10000  # 10000*x in float16 would be inf here
    rep = logmel(audio)
    assert rep.dtype == np.float32 and np.all(np.isfinite(rep))


@pytest.fixture(scope="module")
def original():
    require_keras()  # TensorFlow, or skip saying why it is missing
    _librosa()
    from model_export.musicnn_export import OriginalGraph, frozen_graph, unpack

    try:
        wheel = fetch_wheel(REPO / ".cache" / "musicnn")
    except Exception as e:  # no network, no pip: say so in one line
        pytest.skip(f"the musicnn 0.1.0 wheel could not be downloaded into .cache/musicnn/: {type(e).__name__}")
    graph = OriginalGraph(frozen_graph(unpack(wheel, REPO / ".cache" / "musicnn" / "unpacked")))
    yield graph
    graph.close()


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin-kernels"])
@pytest.mark.parametrize("kind", PIECES)
def test_litert_model_agrees_with_the_original_graph_within_0_01_on_every_tag(original, kind, xnnpack):
    # other audio than the export measured on (another seed, longer, patches overlapping by half)
    batch = patches(logmel(synth_piece(kind, seconds=12.0, seed=7)), hop=93)
    assert len(batch) == 7
    want = original(batch)
    it = interpreter(num_threads=1, xnnpack=xnnpack)
    got = np.stack([tags(it, p) for p in batch])
    assert np.all(np.isfinite(want)) and want.shape == got.shape == (len(batch), 50)
    diff = np.abs(got - want).max(axis=0)
    assert diff.max() <= 0.01, {
        label: round(float(d), 4) for label, d in zip(json.loads(META.read_text())["labels"], diff) if d > 0.01
    }
