"""The real LiteRT interpreter on the real shipped model."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from moodbox.emotions import DEFAULT_MODEL, EmotionClassifier, ModelError, crop_face
from moodbox.faces import FaceDetector, to_gray


@pytest.fixture(scope="module")
def clf() -> EmotionClassifier:
    return EmotionClassifier()


def test_shipped_model_has_metadata_in_output_order(clf):
    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert clf.labels == tuple(meta["labels"])
    assert (clf.meta.width, clf.meta.height) == (48, 48)


def test_astronaut_is_one_happy_face(clf, astronaut_png):
    img = cv2.imread(str(astronaut_png))
    gray = to_gray(img)
    faces = FaceDetector().detect(gray)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 < x < 200 and 40 < y < 90 and 80 < w < 120  # Eileen Collins' face
    [scores] = clf.classify(gray, faces)
    assert scores.emotion == "happy", scores.scores
    assert abs(sum(scores.scores.values()) - 1.0) < 0.05


def test_several_faces_per_frame(clf, astronaut_png):
    img = cv2.imread(str(astronaut_png))
    both = np.hstack([img, img])
    gray = to_gray(both)
    faces = FaceDetector().detect(gray)
    assert len(faces) == 2
    results = clf.classify(gray, faces)
    assert [r.emotion for r in results] == ["happy", "happy"]
    assert results[0].box != results[1].box


def test_int8_quantisation_uses_the_tensors_parameters(clf):
    x = clf.preprocess(np.full((48, 48), 255, np.uint8))
    assert x.shape == (1, 48, 48, 1) and x.max() == pytest.approx(1.0)
    p = clf.predict(x)
    assert p.shape == (7,) and np.all(p >= 0) and abs(p.sum() - 1) < 0.05


def test_crop_face_grows_by_margin_and_clamps():
    img = np.zeros((100, 100), np.uint8)
    assert crop_face(img, (10, 10, 20, 20), 0.5).shape == (40, 40)
    assert crop_face(img, (0, 0, 20, 20), 0.5).shape == (30, 30)


def _copy_model(tmp_path):
    m = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, m)
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), m.with_suffix(".json"))
    return m


def test_missing_model_names_file(tmp_path):
    with pytest.raises(ModelError, match="nope.tflite: model file not found"):
        EmotionClassifier(tmp_path / "nope.tflite")


def test_missing_metadata_names_file(tmp_path):
    m = _copy_model(tmp_path)
    m.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match=r"m\.json: model metadata file not found"):
        EmotionClassifier(m)


def test_corrupt_model(tmp_path):
    m = _copy_model(tmp_path)
    m.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ModelError, match=r"m\.tflite: not a valid TFLite model"):
        EmotionClassifier(m)


def test_label_count_mismatch(tmp_path):
    m = _copy_model(tmp_path)
    meta = json.loads(m.with_suffix(".json").read_text())
    meta["labels"] = meta["labels"][:5]
    m.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"m\.json: metadata lists 5 labels, but m\.tflite outputs 7"):
        EmotionClassifier(m)


def test_input_size_mismatch(tmp_path):
    m = _copy_model(tmp_path)
    meta = json.loads(m.with_suffix(".json").read_text())
    meta["input"]["width"] = 64
    m.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"m\.json: metadata says input 64x48"):
        EmotionClassifier(m)


def test_malformed_metadata(tmp_path):
    m = _copy_model(tmp_path)
    m.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match=r"m\.json: cannot read model metadata"):
        EmotionClassifier(m)
    m.with_suffix(".json").write_text('{"labels": ["a"]}')
    with pytest.raises(ModelError, match=r"m\.json: malformed model metadata"):
        EmotionClassifier(m)


def test_mirror_average_scores_a_face_and_its_mirror_alike(tmp_path, astronaut_png):
    """With mirror_average set, a face and its mirror image get the same scores (the average of both
    inferences); without it, a face is scored once."""
    m = _copy_model(tmp_path)
    meta = json.loads(m.with_suffix(".json").read_text())
    meta["mirror_average"] = True
    m.with_suffix(".json").write_text(json.dumps(meta))
    mirrored = EmotionClassifier(m)
    meta["mirror_average"] = False
    m.with_suffix(".json").write_text(json.dumps(meta))
    single = EmotionClassifier(m)
    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x = single.preprocess(gray, face.box)
    flipped = np.ascontiguousarray(x[:, :, ::-1])
    np.testing.assert_allclose(mirrored.infer(x), (single.predict(x) + single.predict(flipped)) / 2, atol=1e-6)
    np.testing.assert_allclose(mirrored.infer(x), mirrored.infer(flipped), atol=1e-6)
    np.testing.assert_allclose(single.infer(x), single.predict(x), atol=1e-6)
    assert mirrored.classify_face(gray, face.box).emotion == "happy"
