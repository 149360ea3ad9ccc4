"""Train an emotion CNN on FER2013 (CSV or image folders), with checkpoints that survive interruption.

    python -m model_export.train --data ../shared/data/fer2013 --arch moodnet --out runs/moodnet

Running the same command again resumes from ``<out>/backup`` where it stopped. The best model by
validation accuracy is kept as ``<out>/best.keras``; progress goes to ``<out>/train.log`` and
``<out>/history.csv``. Runs on the CPU; TensorFlow uses a GPU by itself when one is present.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from model_export.data import LABELS, Dataset, load

log = logging.getLogger(__name__)


def class_weights(labels: np.ndarray, power: float = 0.5) -> dict[int, float]:
    """Inverse-frequency weights softened by ``power`` (0.5 = square root), mean 1.

    Full inverse frequency makes the rare ``disgust`` class (1.5 % of FER2013) weigh 16x and costs overall
    accuracy; the square root still lifts its recall without hurting the common classes much."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    w = (counts.max() / np.maximum(counts, 1.0)) ** power
    w = w / (w * counts).sum() * counts.sum()  # the weighted sample count stays the sample count
    return {i: float(v) for i, v in enumerate(w)}


def _augmenter(seed: int):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.04, fill_mode="nearest", seed=seed + 1),  # about +-15 degrees
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 2),
            layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 3),
            layers.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=seed + 4),
            layers.RandomContrast(0.2, seed=seed + 5),
        ],
        name="augment",
    )


def make_datasets(train: Dataset, val: Dataset, batch: int, seed: int, weights: dict[int, float] | None):
    import tensorflow as tf

    aug = _augmenter(seed)

    def to_float(x):
        return tf.cast(x, tf.float32)[..., None] / 255.0

    wvec = tf.constant([weights[i] for i in range(len(LABELS))] if weights else [1.0] * len(LABELS))
    x_tr, y_tr = train.images, train.labels
    ds_tr = (
        tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
        .shuffle(len(y_tr), seed=seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(
            lambda x, y: (
                tf.clip_by_value(aug(to_float(x), training=True), 0.0, 1.0),
                tf.one_hot(y, len(LABELS)),
                tf.gather(wvec, y),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    ds_val = (
        tf.data.Dataset.from_tensor_slices((val.images, val.labels))
        .batch(256)
        .map(lambda x, y: (to_float(x), tf.one_hot(y, len(LABELS))))
        .cache()
    )
    return ds_tr, ds_val


class _LogEpochs:
    """Keras callback factory: one log line per epoch, so a background run's log is readable."""

    @staticmethod
    def make():
        import keras

        class LogEpochs(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                parts = " ".join(f"{k}={v:.4f}" for k, v in sorted(logs.items()) if isinstance(v, float))
                log.info("epoch %d done in %.0fs: %s", epoch + 1, time.monotonic() - self._t0, parts)

        return LogEpochs()


def train(args: argparse.Namespace) -> Path:
    import keras
    import tensorflow as tf

    from model_export.architectures import build, multiply_adds

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    log.info("devices: %s", [d.name for d in tf.config.list_physical_devices()])

    cache = Path(args.cache_dir) if args.cache_dir else None
    train_ds = load(args.data, "train", cache_dir=cache)
    val_ds = load(args.val_data or args.data, "val", cache_dir=cache)
    log.info("train: %d faces %s", len(train_ds), train_ds.class_counts())
    log.info("val:   %d faces %s", len(val_ds), val_ds.class_counts())

    weights = class_weights(train_ds.labels, args.class_weight_power) if args.class_weight_power > 0 else None
    log.info("class weights: %s", {LABELS[i]: round(w, 2) for i, w in (weights or {}).items()})
    ds_tr, ds_val = make_datasets(train_ds, val_ds, args.batch, args.seed, weights)

    if args.init:
        # Fine-tuning (a second schedule on a trained model, or a user's own faces) starts from its weights.
        model = keras.models.load_model(args.init, compile=False)
        log.info("starting from %s", args.init)
    else:
        model = build(args.arch)
    log.info("%s: %d parameters, %.1f M multiply-adds", args.arch, model.count_params(), multiply_adds(model) / 1e6)
    steps = int(np.ceil(len(train_ds) / args.batch)) * args.epochs
    if args.arch == "seed_cnn":
        lr = args.lr or 1e-4  # as published: plain Adam, small constant rate
    else:
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, steps, warmup_target=args.lr or 2e-3, warmup_steps=steps // 30, alpha=0.01
        )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=args.patience, restore_best_weights=False),
        _LogEpochs.make(),
    ]
    (out / "train_args.json").write_text(json.dumps(vars(args), indent=2))
    model.fit(
        ds_tr,
        validation_data=ds_val,
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stderr.isatty() else 2,
    )
    best = out / "best.keras"
    log.info("best model: %s", best)
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="fer2013.csv, or a folder with train/<emotion>/ and val/<emotion>/")
    p.add_argument("--val-data", help="validation data if not in --data (CSV: PublicTest rows are used)")
    p.add_argument("--arch", default="moodnet", help="seed_cnn | moodnet (default) | moodnet_w48")
    p.add_argument(
        "--init",
        help="start from this trained Keras model (.keras) instead of random weights: fine-tuning on your own "
        "faces, or another schedule on the shipped model",
    )
    p.add_argument("--out", required=True, help="run folder: checkpoints, log, history")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 2e-3; seed_cnn 1e-4)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--class-weight-power", type=float, default=0.5, help="0 disables class weighting")
    p.add_argument("--patience", type=int, default=15, help="early stopping on val accuracy")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0 = all cores)")
    p.add_argument("--cache-dir", default=".cache/fer2013", help="decoded-image cache ('' disables)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    # The run's log file is attached on its own: basicConfig does nothing where logging is already set up
    # (a notebook, a test runner), and train.log must be written all the same.
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    file_handler = logging.FileHandler(out / "train.log")
    file_handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(file_handler)
    try:
        train(args)
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
