"""Measure an exported model on labelled faces with the device's own preprocessing.

    python -m model_export.evaluate device/moodbox/models/moodnet.tflite --data ../shared/data/fer2013 \
        --split val --keras runs/moodnet/best.keras --out runs/moodnet/eval

prints accuracy and per-class precision/recall/F1, writes ``report.json`` and ``confusion.png`` into
``--out``, and with ``--keras`` also the int8-vs-float top-1 agreement. Preprocessing is
``moodbox.vision.emotions.EmotionClassifier`` driven by the model's metadata JSON, i.e. exactly what the Pi runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model_export.data import LABELS, Dataset, load

log = logging.getLogger(__name__)


@dataclass
class Report:
    labels: tuple[str, ...]
    confusion: np.ndarray  # rows: true class, columns: predicted
    agreement: float | None = None
    ms_per_face: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0

    def per_class(self) -> dict[str, dict[str, float]]:
        cm = self.confusion.astype(np.float64)
        out: dict[str, dict[str, float]] = {}
        for i, name in enumerate(self.labels):
            tp = cm[i, i]
            precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
            recall = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[name] = {
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "support": int(cm[i, :].sum()),
            }
        return out

    def summary(self) -> dict[str, Any]:
        s: dict[str, Any] = {"val_accuracy": round(self.accuracy, 4), "faces": int(self.confusion.sum())}
        if self.agreement is not None:
            s["int8_float_agreement"] = round(self.agreement, 4)
        s["macro_f1"] = round(float(np.mean([c["f1"] for c in self.per_class().values()])), 4)
        s.update({k: v for k, v in self.extra.items() if k != "through_detector"})
        return s

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            **({"through_detector": self.extra["through_detector"]} if "through_detector" in self.extra else {}),
            "ms_per_face": round(self.ms_per_face, 3),
            "per_class": self.per_class(),
            "confusion": {"labels": list(self.labels), "matrix": self.confusion.tolist()},
        }

    def text(self) -> str:
        lines = [f"accuracy {self.accuracy:.4f} on {int(self.confusion.sum())} faces"]
        if self.agreement is not None:
            lines.append(f"int8-vs-float top-1 agreement {self.agreement:.4f}")
        lines.append(f"{self.ms_per_face:.2f} ms per face (one thread, preprocessing included)")
        lines.append(f"{'class':<10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}")
        for name, c in self.per_class().items():
            lines.append(f"{name:<10} {c['precision']:>6.3f} {c['recall']:>6.3f} {c['f1']:>6.3f} {c['support']:>5}")
        return "\n".join(lines)


def evaluate(model: Path, data: Dataset, keras_model: Any = None, threads: int = 1) -> Report:
    from moodbox.vision.emotions import EmotionClassifier, score_views

    clf = EmotionClassifier(model, threads=threads)
    label_index = {name: i for i, name in enumerate(clf.labels)}
    missing = [n for n in LABELS if n not in label_index]
    if missing:
        raise ValueError(f"{model}: metadata labels {clf.labels} lack {missing}")
    n = len(clf.labels)
    cm = np.zeros((n, n), dtype=np.int64)
    inputs = []
    int8_pred = []
    t0 = time.perf_counter()
    for img, y in zip(data.images, data.labels):
        x = clf.preprocess(img)
        p = int(np.argmax(clf.infer(x)))
        cm[label_index[LABELS[y]], p] += 1
        int8_pred.append(p)
        if keras_model is not None:
            inputs.append(x[0])
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(data))
    agreement = None
    if keras_model is not None:
        # Compare like with like: the float model looks at each face the same way (mirror, tilts) the
        # device looks with the int8 one.
        float_probs = score_views(lambda b: keras_model.predict(b, batch_size=256, verbose=0), np.stack(inputs), clf.meta)
        float_pred = np.argmax(float_probs, axis=1)
        agreement = float(np.mean(float_pred == np.asarray(int8_pred)))
    return Report(labels=clf.labels, confusion=cm, agreement=agreement, ms_per_face=ms)


def through_detector(model: Path, data: Dataset, margins: list[float], face_px: int = 192, limit: int = 1500) -> dict[str, Any]:
    """Accuracy as the device sees faces: each face upscaled onto a 640x480 canvas, found by the Haar
    detector, cropped with each candidate ``face_margin``. Picks the margin the metadata should carry."""
    import cv2

    from moodbox.vision.emotions import EmotionClassifier
    from moodbox.vision.faces import FaceDetector

    clf = EmotionClassifier(model)
    det = FaceDetector()
    metas = {m: replace(clf.meta, face_margin=m) for m in margins}
    label_index = {name: i for i, name in enumerate(clf.labels)}
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data), size=min(limit, len(data)), replace=False)
    found = 0
    correct = dict.fromkeys(margins, 0)
    for i in idx:
        face = cv2.resize(data.images[i], (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((480, 640), 110, np.uint8)
        y0, x0 = (480 - face_px) // 2, (640 - face_px) // 2
        canvas[y0 : y0 + face_px, x0 : x0 + face_px] = face
        faces = det.detect(canvas)
        if not faces:
            continue
        found += 1
        truth = label_index[LABELS[data.labels[i]]]
        for m in margins:
            clf.meta = metas[m]
            if int(np.argmax(clf.infer(clf.preprocess(canvas, faces[0].box)))) == truth:
                correct[m] += 1
    return {
        "faces": int(len(idx)),
        "detected": found / len(idx),
        "accuracy_by_margin": {f"{m:g}": round(c / max(found, 1), 4) for m, c in correct.items()},
    }


def confusion_png(report: Report, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = report.confusion.astype(np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=120)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(report.labels)), report.labels, rotation=45, ha="right")
    ax.set_yticks(range(len(report.labels)), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(report.labels)):
        for j in range(len(report.labels)):
            ax.text(
                j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black"
            )
    ax.set_title(title or f"accuracy {report.accuracy:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the .tflite (its .json must sit beside it)")
    p.add_argument("--data", required=True, help="fer2013.csv, a folder with <split>/<emotion>/, or <emotion>/ folders")
    p.add_argument("--split", default="val", help="train | val (PublicTest) | test (PrivateTest)")
    p.add_argument("--keras", type=Path, help="the float Keras model, for the int8-vs-float agreement")
    p.add_argument("--out", type=Path, help="folder for report.json and confusion.png")
    p.add_argument("--cache-dir", default="")
    p.add_argument("--margins", help="comma-separated face margins to compare through the Haar detector (e.g. 0,0.1,0.2)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = load(args.data, args.split, cache_dir=args.cache_dir or None)
    keras_model = None
    if args.keras:
        import keras

        keras_model = keras.models.load_model(args.keras, compile=False)
    report = evaluate(args.model, data, keras_model)
    print(report.text())
    if args.margins:
        margins = [float(m) for m in args.margins.split(",")]
        td = through_detector(args.model, data, margins)
        report.extra["through_detector"] = td
        print(
            f"through the Haar detector: {td['detected']:.1%} of {td['faces']} faces found; accuracy by face margin: "
            + ", ".join(f"{m}: {a:.3f}" for m, a in td["accuracy_by_margin"].items())
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
        confusion_png(report, args.out / "confusion.png", f"{args.model.name} on {args.split}: {report.accuracy:.3f}")
        print(f"wrote {args.out / 'report.json'} and {args.out / 'confusion.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
