"""model_export's own logic: loaders, metadata, class weights, and a tiny int8 export round trip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_export.data import LABELS, DataError, load, load_csv, load_folder
from model_export.export import build_metadata, representative_faces
from model_export.train import class_weights
from tests.util import noise_faces, require_keras


def _csv(path, rows):
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for e, p, u in rows))
    return path


def _pixels(v: int) -> str:
    return " ".join([str(v)] * 48 * 48)


def test_csv_loader_splits_and_labels(tmp_path):
    f = _csv(
        tmp_path / "fer2013.csv", [(3, _pixels(10), "Training"), (6, _pixels(20), "PublicTest"), (0, _pixels(30), "Training")]
    )
    train = load(f, "train")
    assert len(train) == 2 and train.labels.tolist() == [3, 0]
    assert train.images.shape == (2, 48, 48) and train.images[1, 0, 0] == 30
    val = load(f, "val")
    assert val.labels.tolist() == [6] and LABELS[6] == "neutral"


@pytest.mark.parametrize(
    "row, message",
    [
        ((9, _pixels(1), "Training"), ":3: emotion 9 is outside 0-6"),
        (("x", _pixels(1), "Training"), ":3: emotion 'x' is not an integer"),
        ((1, "1 2 3", "Training"), ":3: 3 pixels, expected 2304"),
        ((1, _pixels(1).replace("1", "a", 1), "Training"), ":3: pixels are not space-separated integers"),
        ((1, _pixels(300), "Training"), ":3: pixel values outside 0-255"),
    ],
)
def test_csv_malformed_row_names_line(tmp_path, row, message):
    f = _csv(tmp_path / "fer.csv", [(3, _pixels(10), "Training"), row])
    with pytest.raises(DataError, match=message):
        load_csv(f)


def test_csv_missing_column(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("label,pixels\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        load_csv(f)


def test_folder_loader_maps_labels_by_name(tmp_path):
    for name, v in (("neutral", 1), ("angry", 2), ("surprise", 3)):
        (tmp_path / "train" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "train" / name / "a.png"), np.full((48, 48), v, np.uint8))
    ds = load(tmp_path, "train")
    got = {LABELS[l]: int(img[0, 0]) for img, l in zip(ds.images, ds.labels)}
    assert got == {"neutral": 1, "angry": 2, "surprise": 3}


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "nowhere")
    (tmp_path / "happy").mkdir()
    (tmp_path / "smiling").mkdir()
    with pytest.raises(DataError, match="unknown class folder.*smiling"):
        load_folder(tmp_path)
    (tmp_path / "smiling").rmdir()
    (tmp_path / "happy" / "x.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"x\.jpg: cannot be read as an image"):
        load_folder(tmp_path)


def test_real_fer_folder_counts(fer_root):
    val = load(fer_root, "val")
    assert len(val) == 3589
    assert val.class_counts()["disgust"] == 56 and val.class_counts()["happy"] == 895


def test_class_weights_lift_rare_classes():
    labels = np.array([3] * 700 + [1] * 40 + [0] * 300)
    w = class_weights(labels)
    assert w[1] > w[0] > w[3]
    counts = np.bincount(labels, minlength=7)
    assert sum(w[i] * counts[i] for i in range(7)) == pytest.approx(counts.sum())


def test_metadata_contract():
    meta = build_metadata(labels=LABELS, width=48, height=48, face_margin=0.1, source="x", metrics={"val_accuracy": 0.5})
    assert meta["labels"] == list(LABELS)
    assert meta["input"] == {"width": 48, "height": 48, "color": "gray", "scale": 1 / 255, "offset": 0.0}
    assert meta["face_margin"] == 0.1 and meta["metrics"]["val_accuracy"] == 0.5
    assert "tilted_views" not in meta  # none unless asked for: a plain model is scored once
    with pytest.raises(ValueError):
        build_metadata(labels=LABELS, width=48, height=48, color="bgr")
    looks = build_metadata(labels=LABELS, width=48, height=48, mirror_average=True, tilt_deg=(6, -6), tilt_below_margin=0.3)
    assert looks["mirror_average"] is True
    assert looks["tilted_views"] == {"angles_deg": [6.0, -6.0], "below_margin": 0.3}
    with pytest.raises(ValueError, match="tilt_below_margin"):
        build_metadata(labels=LABELS, width=48, height=48, tilt_deg=(6,), tilt_below_margin=1.5)


def test_tiny_export_round_trip(tmp_path):
    """Train nothing: a tiny random Keras model, exported to int8 and run by the device's classifier."""
    keras = require_keras()
    from keras import layers

    from model_export.data import Dataset
    from model_export.evaluate import confusion_png, evaluate
    from model_export.export import export
    from moodbox.vision.emotions import EmotionClassifier

    keras.utils.set_random_seed(0)
    inp = keras.Input((48, 48, 1))
    x = layers.Conv2D(4, 3, strides=4, activation="relu")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(7, activation="softmax")(x))
    model_path = tmp_path / "tiny.keras"
    model.save(model_path)
    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 256, (70, 48, 48), dtype=np.uint8), np.repeat(np.arange(7), 10), "random")
    tfl, meta_path = export(model_path, tmp_path / "out" / "tiny", data, val=data, calibration_count=35, source="test")
    meta = json.loads(meta_path.read_text())
    assert meta["labels"] == list(LABELS) and meta["source"] == "test"
    assert meta["mirror_average"] is True and meta["tilted_views"] == {"angles_deg": [6.0, -6.0], "below_margin": 0.3}
    assert meta["metrics"]["faces"] == 70 and meta["metrics"]["int8_float_agreement"] > 0.5

    clf = EmotionClassifier(tfl)
    assert clf._in["dtype"] == np.int8 and clf._out["dtype"] == np.int8
    x = clf.preprocess(data.images[0])
    p_int8 = clf.predict(x)
    p_float = model.predict(x, verbose=0)[0]
    assert np.abs(p_int8 - p_float).max() < 0.05
    report = evaluate(tfl, data)
    assert report.confusion.sum() == 70
    confusion_png(report, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_representative_sample_covers_every_class():
    from model_export.data import Dataset

    labels = np.repeat(np.arange(7), [100, 5, 100, 100, 100, 100, 100])
    ds = Dataset(np.zeros((len(labels), 48, 48), np.uint8), labels, "x")
    sample_idx = representative_faces(
        Dataset(np.arange(len(labels))[:, None, None].repeat(48, 1).repeat(48, 2).astype(np.uint16), labels, "x"), 70
    )
    picked = {int(labels[i]) for i in sample_idx[:, 0, 0]}
    assert picked == set(range(7))
    assert len(representative_faces(ds, 70)) == 10 * 6 + 5


CHECKPOINT = Path(__file__).resolve().parents[1] / "model_export" / "checkpoints" / "moodnet.keras"


def test_committed_checkpoint_is_the_shipped_models_float_twin(astronaut_png):
    """The float checkpoint users fine-tune from is the model the shipped .tflite was exported from."""
    keras = require_keras()

    from moodbox.vision.emotions import EmotionClassifier
    from moodbox.vision.faces import FaceDetector, to_gray

    model = keras.models.load_model(CHECKPOINT, compile=False)
    clf = EmotionClassifier()
    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x = clf.preprocess(gray, face.box)
    p_float = model.predict(x, verbose=0)[0]
    assert np.abs(clf.predict(x) - p_float).max() < 0.1
    assert clf.labels[int(np.argmax(p_float))] == "happy"


def test_train_init_fine_tunes_from_a_checkpoint(tmp_path):
    require_keras()
    import keras

    from model_export.train import main

    noise_faces(tmp_path / "faces", per_class=2)
    out = tmp_path / "run"
    assert (
        main(
            [
                "--data",
                str(tmp_path / "faces"),
                "--init",
                str(CHECKPOINT),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--batch",
                "7",
                "--cache-dir",
                "",
            ]
        )
        == 0
    )
    assert f"starting from {CHECKPOINT}" in (out / "train.log").read_text()
    tuned = keras.models.load_model(out / "best.keras", compile=False)
    assert tuned.count_params() == keras.models.load_model(CHECKPOINT, compile=False).count_params()


def test_every_architecture_takes_a_48x48_grey_face_and_scores_seven_emotions():
    require_keras()
    from model_export.architectures import ARCHITECTURES, TEACHERS, build, multiply_adds

    for name in [*ARCHITECTURES, *TEACHERS]:
        model = build(name)
        assert tuple(model.inputs[0].shape[1:]) == (48, 48, 1), name
        assert model.outputs[0].shape[-1] == 7, name
        if name in TEACHERS:
            assert 150e6 <= multiply_adds(model) <= 300e6, name  # the teacher budget
        else:
            assert multiply_adds(model) < 100e6, name  # a few ms per face on a Pi 4 core
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet152")
