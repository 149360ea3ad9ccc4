"""The real LiteRT interpreter on the real shipped model."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from moodbox.vision.emotions import (
    DEFAULT_MODEL,
    EmotionClassifier,
    ModelError,
    ModelMeta,
    crop_face,
    score_views,
)
from moodbox.vision.faces import FaceDetector, to_gray
from moodbox.vision.looks import _tilt


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


def _meta(**kw) -> ModelMeta:
    base = dict(labels=("a", "b", "c"), width=4, height=4, color="gray", scale=1.0, offset=0.0)
    return ModelMeta(**{**base, **kw})


def test_tilted_looks_only_for_ambiguous_faces():
    """A face whose best two scores are close gets the tilted looks (each tilt, of the face and of its
    mirror) averaged in; a clear face is scored from the first look alone, so it costs nothing more."""
    calls: list[int] = []
    clear = np.array([0.9, 0.05, 0.05], dtype=np.float32)
    unsure = np.array([0.45, 0.40, 0.15], dtype=np.float32)
    tilted = np.array([0.1, 0.8, 0.1], dtype=np.float32)

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[0])
        out = []
        for img in batch:  # the image's first pixel tells which face it is; a tilt blurs the corner
            v = float(img[0, 0, 0])
            out.append(clear if v == 1.0 else unsure if v == 2.0 else tilted)
        return np.stack(out)

    batch = np.stack([np.full((4, 4, 1), 1.0, np.float32), np.full((4, 4, 1), 2.0, np.float32)])
    batch[1, 1:3, 1:3] = 9.0  # the ambiguous face's centre: tilted, its corner changes
    meta = _meta(mirror_average=True, tilt_deg=(6.0, -6.0), tilt_below_margin=0.3)
    probs = score_views(predict, batch, meta)
    assert calls == [2, 2, 1, 1, 1, 1]  # face + mirror for both; four tilted looks for the ambiguous one only
    np.testing.assert_allclose(probs[0], clear)
    np.testing.assert_allclose(probs[1], (2 * unsure + 4 * tilted) / 6, atol=1e-6)
    calls.clear()
    np.testing.assert_allclose(score_views(predict, batch, _meta(mirror_average=True)), np.stack([clear, unsure]))
    assert calls == [2, 2]


def test_shipped_model_looks_again_at_ambiguous_faces(tmp_path, astronaut_png):
    """On the real model: with tilted_views every look is averaged when the face is ambiguous (a margin of
    1 makes every face so), and only the face and its mirror when it is clear (a margin of 0)."""
    m = _copy_model(tmp_path)
    meta = json.loads(m.with_suffix(".json").read_text())
    meta["mirror_average"] = True
    meta["tilted_views"] = {"angles_deg": [6.0, -6.0], "below_margin": 1.0}
    m.with_suffix(".json").write_text(json.dumps(meta))
    always = EmotionClassifier(m)
    del meta["tilted_views"]
    m.with_suffix(".json").write_text(json.dumps(meta))
    plain = EmotionClassifier(m)
    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x = plain.preprocess(gray, face.box)
    flipped = np.ascontiguousarray(x[:, :, ::-1])
    looks = [x, flipped] + [_tilt(v, a) for a in (6.0, -6.0) for v in (x, flipped)]
    expected = sum(plain.predict(v) for v in looks) / 6
    np.testing.assert_allclose(always.infer(x), expected, atol=1e-6)
    assert not np.allclose(always.infer(x), plain.infer(x), atol=1e-3)  # the tilts did change the scores
    assert always.classify_face(gray, face.box).emotion == "happy"


@pytest.mark.parametrize(
    "tilted, message",
    [
        ([6, -6], r"malformed model metadata"),
        ({"angles_deg": ["six"], "below_margin": 0.3}, r"malformed model metadata"),
        ({"angles_deg": [6], "below_margin": 2}, r"tilted_views\.below_margin must be between 0 and 1"),
    ],
)
def test_bad_tilted_views_metadata_names_the_file(tmp_path, tilted, message):
    m = _copy_model(tmp_path)
    meta = json.loads(m.with_suffix(".json").read_text())
    meta["tilted_views"] = tilted
    m.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"m\.json: " + message):
        EmotionClassifier(m)


def test_tilted_views_are_a_rotation_made_of_plain_numpy_arithmetic():
    """The tilted looks rotate as cv2.warpAffine does (to within its 1/32-pixel coordinate steps) but are
    computed with numpy alone: warpAffine's SIMD paths gave arm64 scores 0.007 away from x86's (issue 16)."""
    rng = np.random.default_rng(5)
    batch = np.stack([cv2.GaussianBlur(rng.random((48, 48)).astype(np.float32), (0, 0), 1.5) for _ in range(3)])
    batch = batch[..., None]
    assert np.array_equal(_tilt(batch, 0.0), batch)
    for angle in (6.0, -6.0, 15.0):
        m = cv2.getRotationMatrix2D((23.5, 23.5), angle, 1.0)
        want = np.stack(
            [cv2.warpAffine(img[..., 0], m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101) for img in batch]
        )
        got = _tilt(batch, angle)
        assert got.shape == batch.shape and got.dtype == batch.dtype
        assert np.abs(got[..., 0] - want).max() < 0.01 and np.abs(got[..., 0] - want).mean() < 0.002
