"""Pure logic of the smoother, on synthetic scores."""

from __future__ import annotations

from moodbox.config import SmoothingConfig
from moodbox.vision.smoothing import Smoother

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def scores(top: str, p: float = 0.8) -> dict[str, float]:
    rest = (1 - p) / (len(LABELS) - 1)
    return {k: (p if k == top else rest) for k in LABELS}


def feed(sm: Smoother, seq, fps: float = 10.0, t0: float = 0.0):
    out = []
    for i, s in enumerate(seq):
        out.append(sm.update(t0 + i / fps, s))
    return out


def test_needs_dwell_before_first_emotion():
    sm = Smoother(LABELS, SmoothingConfig(window_s=1, dwell_s=2, min_frames=3))
    res = feed(sm, [scores("happy")] * 40)
    first = next(r for r in res if r.emotion == "happy")
    assert 2.0 <= first.t <= 2.4
    assert first.changed and sum(r.changed for r in res) == 1


def test_single_outlier_frames_do_not_flip():
    sm = Smoother(LABELS, SmoothingConfig(window_s=2, dwell_s=1, margin=0.1))
    seq = [scores("happy")] * 40 + ([scores("angry")] + [scores("happy")] * 3) * 20
    res = feed(sm, seq)
    assert res[-1].emotion == "happy"
    assert sum(r.changed for r in res) == 1


def test_hysteresis_margin_blocks_a_narrow_lead():
    sm = Smoother(LABELS, SmoothingConfig(window_s=1, dwell_s=0.5, margin=0.2))
    both = lambda a, b: {**{k: 0.0 for k in LABELS}, "happy": a, "sad": b}  # noqa: E731
    feed(sm, [both(0.7, 0.3)] * 30)
    assert sm.emotion == "happy"
    res = feed(sm, [both(0.45, 0.55)] * 50, t0=3.0)  # sad leads by only 0.1
    assert all(r.emotion == "happy" for r in res)
    res = feed(sm, [both(0.2, 0.8)] * 50, t0=10.0)
    assert res[-1].emotion == "sad"


def test_low_confidence_frames_ignored():
    sm = Smoother(LABELS, SmoothingConfig(window_s=1, dwell_s=0.5, min_confidence=0.5))
    res = feed(sm, [scores("fear", 0.4)] * 50)
    assert all(r.emotion is None for r in res)


def test_decays_to_no_face_after_timeout_and_timestamps_not_wall_clock():
    sm = Smoother(LABELS, SmoothingConfig(window_s=1, dwell_s=0.5, no_face_s=5))
    feed(sm, [scores("happy")] * 30)
    assert sm.emotion == "happy"
    res = feed(sm, [None] * 100, t0=3.0)  # 10 s of no face at 10 fps, fed instantly
    still = [r for r in res if r.t < 2.9 + 5]
    assert all(r.emotion == "happy" and not r.face for r in still)
    gone = [r for r in res if r.t >= 2.9 + 5 + 0.01]
    assert gone and all(r.emotion is None for r in gone)
    assert sum(r.changed for r in res) == 1


def test_change_follows_new_emotion_within_window_plus_dwell():
    st = SmoothingConfig(window_s=2, dwell_s=1, margin=0.1)
    sm = Smoother(LABELS, st)
    feed(sm, [scores("happy")] * 50)
    res = feed(sm, [scores("sad")] * 50, t0=5.0)
    switch = next(r.t for r in res if r.emotion == "sad")
    assert switch - 5.0 <= st.window_s + st.dwell_s


def test_reset_forgets():
    sm = Smoother(LABELS)
    feed(sm, [scores("happy")] * 60)
    assert sm.emotion == "happy"
    sm.reset()
    assert sm.emotion is None


def test_room_weighs_faces_by_size_and_confidence_and_largest_takes_one():
    from moodbox.vision.smoothing import FaceScores

    room = Smoother(LABELS, SmoothingConfig(faces="room"))
    big_happy, small_sad = FaceScores(scores("happy", 0.8), area=200 * 200), FaceScores(scores("sad", 0.8), area=100 * 100)
    vec = dict(zip(LABELS, room.combine([small_sad, big_happy])))
    assert abs(vec["happy"] - (0.8 * 4 + 0.2 / 6) / 5) < 1e-9 and vec["happy"] > vec["sad"]  # weights 4 : 1
    unsure_big = FaceScores(scores("happy", 0.3), area=120 * 120)  # as big, but the model is unsure of it
    vec = dict(zip(LABELS, room.combine([unsure_big, FaceScores(scores("sad", 0.9), area=100 * 100)])))
    assert vec["sad"] > vec["happy"]
    largest = Smoother(LABELS, SmoothingConfig(faces="largest"))
    assert dict(zip(LABELS, largest.combine([small_sad, big_happy])))["happy"] == 0.8
    out = room.update(0.0, [small_sad, big_happy])
    assert out.face and out.faces == 2
    assert room.update(0.1, []).faces == 0 and not room.update(0.2, None).face
