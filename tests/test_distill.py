"""The teacher -> student path of model_export: soft targets from an ensemble, then a student on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_export.data import LABELS, load
from tests.util import noise_faces, require_keras

CHECKPOINT = Path(__file__).resolve().parents[1] / "model_export" / "checkpoints" / "moodnet.keras"


@pytest.fixture
def faces(tmp_path):
    return noise_faces(tmp_path / "faces", per_class=3)


def test_soft_targets_then_a_student_trained_on_them(tmp_path, faces):
    require_keras()
    from model_export.distill import SoftTargetError, soft_targets_for
    from model_export.distill import main as distill
    from model_export.train import main as train

    soft = tmp_path / "soft.npz"
    # the shipped model's float twin stands in for a trained teacher, twice: an ensemble of two
    assert (
        distill(["--teachers", str(CHECKPOINT), str(CHECKPOINT), "--data", str(faces), "--out", str(soft), "--cache-dir", ""])
        == 0
    )
    train_ds = load(faces, "train")
    probs = soft_targets_for(soft, "train", train_ds)
    assert probs.shape == (len(train_ds), len(LABELS))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    other = load(faces, "val")
    with pytest.raises(SoftTargetError, match="other images"):
        soft_targets_for(soft, "train", other)

    out = tmp_path / "student"
    assert (
        train(
            [
                "--data",
                str(faces),
                "--arch",
                "moodnet",
                "--out",
                str(out),
                "--epochs",
                "2",
                "--batch",
                "8",
                "--cache-dir",
                "",
                "--soft-targets",
                str(soft),
                "--kd-temperature",
                "3",
                "--kd-weight",
                "0.5",
                "--optimizer",
                "sgd",
                "--cycles",
                "2",
                "--erase-prob",
                "0.5",
                "--mixup",
                "0.2",
                "--add-val",
                "--holdout-frac",
                "0.3",
            ]
        )
        == 0
    )
    log = (out / "train.log").read_text()
    assert "distilling from" in log and "held-back 30 %" in log
    assert "epoch 2 done" in log and "val_accuracy=" in log
    assert (out / "best.keras").is_file()


def test_random_erasing_and_mixup_keep_images_and_targets_valid():
    require_keras()
    import tensorflow as tf

    from model_export.train import _mixup, _random_erase

    x = tf.fill([64, 48, 48, 1], 0.5)
    erased = _random_erase(x, 1.0, 0).numpy()
    changed = (erased != 0.5).reshape(64, -1).mean(axis=1)
    assert (changed > 0).all() and (changed < 0.3).all()  # every face, never most of it
    assert erased.min() >= 0.0 and erased.max() <= 1.0
    t = tf.one_hot(tf.range(64) % 7, 7)
    t = tf.concat([t, t], axis=1)
    mx, mt, mw = _mixup(x, t, tf.ones([64]), 0.2)
    assert np.allclose(mt.numpy().sum(axis=1), 2.0) and np.allclose(mw.numpy(), 1.0)
    assert (mt.numpy()[:, :7].max(axis=1) >= 0.5).all()  # the face's own label stays the larger part
