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


def holdout_mask(ds: Dataset, frac: float, seed: int) -> np.ndarray:
    """A class-stratified slice of ``ds`` (True = held back) to pick the epoch on: for the final fine-tune
    on train+val, where val can no longer choose anything honestly."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(ds), bool)
    for c in range(len(LABELS)):
        idx = np.flatnonzero(ds.labels == c)
        held[rng.permutation(idx)[: int(round(frac * len(idx)))]] = True
    return held


def _random_erase(x, prob: float, seed: int):
    """Random erasing (Zhong et al. 2017): a rectangle of 2-25 % of the face, aspect 0.3-3.3, filled with
    noise, on ``prob`` of the faces. Teaches the net to read a face with a hand or hair across it."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    size = tf.cast(tf.shape(x)[1], tf.float32)
    area = tf.random.uniform([n], 0.02, 0.25) * size * size
    aspect = tf.exp(tf.random.uniform([n], np.log(0.3), np.log(3.3)))
    h = tf.clip_by_value(tf.sqrt(area * aspect), 1.0, size)
    w = tf.clip_by_value(tf.sqrt(area / aspect), 1.0, size)
    y0 = tf.random.uniform([n]) * (size - h)
    x0 = tf.random.uniform([n]) * (size - w)
    r = tf.range(size)[None, :]
    rows = (r >= y0[:, None]) & (r < (y0 + h)[:, None])
    cols = (r >= x0[:, None]) & (r < (x0 + w)[:, None])
    apply = tf.random.uniform([n]) < prob
    mask = rows[:, :, None] & cols[:, None, :] & apply[:, None, None]
    noise = tf.random.uniform(tf.shape(x))
    return tf.where(mask[..., None], noise, x)


def _mixup(x, y, w, alpha: float):
    """mixup (Zhang et al. 2018): each batch blended with a shuffled copy of itself, targets and weights too."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    a = tf.random.gamma([n], alpha)
    b = tf.random.gamma([n], alpha)
    lam = a / (a + b)
    lam = tf.maximum(lam, 1.0 - lam)  # the original image stays the larger part
    perm = tf.random.shuffle(tf.range(n))
    lx = lam[:, None, None, None]
    ly = lam[:, None]
    return (
        lx * x + (1 - lx) * tf.gather(x, perm),
        ly * y + (1 - ly) * tf.gather(y, perm),
        lam * w + (1 - lam) * tf.gather(w, perm),
    )


def make_datasets(
    train: Dataset,
    val: Dataset,
    batch: int,
    seed: int,
    weights: dict[int, float] | None,
    soft: np.ndarray | None = None,
    erase_prob: float = 0.0,
    mixup: float = 0.0,
):
    """Training and validation ``tf.data`` pipelines. Targets are 14 wide: the one-hot label, then the
    teachers' soft targets (the one-hot label again when there are none), so one loss serves both."""
    import tensorflow as tf

    aug = _augmenter(seed)

    def to_float(x):
        return tf.cast(x, tf.float32)[..., None] / 255.0

    wvec = tf.constant([weights[i] for i in range(len(LABELS))] if weights else [1.0] * len(LABELS))
    x_tr, y_tr = train.images, train.labels
    onehot = np.eye(len(LABELS), dtype=np.float32)[y_tr]
    targets = np.concatenate([onehot, soft if soft is not None else onehot], axis=1)

    def augment(x, t):
        y = tf.cast(t[:, : len(LABELS)], tf.float32)
        w = tf.gather(wvec, tf.argmax(y, axis=1))
        x = tf.clip_by_value(aug(to_float(x), training=True), 0.0, 1.0)
        if erase_prob > 0:
            x = _random_erase(x, erase_prob, seed)
        if mixup > 0:
            x, t, w = _mixup(x, t, w, mixup)
        return x, t, w

    ds_tr = (
        tf.data.Dataset.from_tensor_slices((x_tr, targets))
        .shuffle(len(y_tr), seed=seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_onehot = np.eye(len(LABELS), dtype=np.float32)[val.labels]
    ds_val = (
        tf.data.Dataset.from_tensor_slices((val.images, np.concatenate([val_onehot, val_onehot], axis=1)))
        .batch(256)
        .map(lambda x, t: (to_float(x), t))
        .cache()
    )
    return ds_tr, ds_val


def distillation_loss(temperature: float, kd_weight: float, label_smoothing: float):
    """(1 - kd_weight) x cross-entropy on the labels + kd_weight x T^2 x KL(teachers_T || student_T)
    (Hinton et al. 2015), on the 14-wide targets of :func:`make_datasets`. With ``kd_weight`` 0 it is
    the plain label-smoothed cross-entropy."""
    import keras
    from keras import ops

    ce = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    k = len(LABELS)

    def loss(t, p):
        hard, soft = t[:, :k], t[:, k:]
        out = ce(hard, p)
        if kd_weight <= 0:
            return out
        eps = 1e-7
        s = ops.softmax(ops.log(ops.clip(p, eps, 1.0)) / temperature)
        q = ops.softmax(ops.log(ops.clip(soft, eps, 1.0)) / temperature)
        kl = ops.sum(q * (ops.log(ops.clip(q, eps, 1.0)) - ops.log(ops.clip(s, eps, 1.0))), axis=-1)
        return (1.0 - kd_weight) * out + kd_weight * temperature**2 * kl

    loss.__name__ = "distillation_loss" if kd_weight > 0 else "crossentropy"
    return loss


def accuracy(t, p):
    """Top-1 accuracy on the label half of the targets (named so Keras reports ``val_accuracy``)."""
    from keras import ops

    return ops.cast(ops.equal(ops.argmax(t[:, : len(LABELS)], axis=-1), ops.argmax(p, axis=-1)), "float32")


def optimizer(name: str, lr, weight_decay: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=weight_decay)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


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
    soft = None
    if args.soft_targets:
        from model_export.distill import soft_targets_for

        soft = soft_targets_for(args.soft_targets, "train", train_ds)
        if args.add_val:
            soft = np.concatenate([soft, soft_targets_for(args.soft_targets, "val", val_ds)])
        log.info("distilling from %s: temperature %g, weight %g", args.soft_targets, args.kd_temperature, args.kd_weight)
    if args.add_val:
        # The final fine-tune: val joins the training faces, and a held-back slice of train picks the epoch.
        train_ds = Dataset(
            np.concatenate([train_ds.images, val_ds.images]),
            np.concatenate([train_ds.labels, val_ds.labels]),
            train_ds.source + " + val",
        )
    if args.holdout_frac > 0:
        held = holdout_mask(train_ds, args.holdout_frac, args.seed)
        if soft is not None:
            soft = soft[~held]
        val_ds = Dataset(train_ds.images[held], train_ds.labels[held], train_ds.source + f" held-back {args.holdout_frac:.0%}")
        train_ds = Dataset(train_ds.images[~held], train_ds.labels[~held], train_ds.source + " minus held-back slice")
        log.info("epoch chosen on a held-back %.0f %% of the training faces", 100 * args.holdout_frac)
    log.info("train: %d faces %s", len(train_ds), train_ds.class_counts())
    log.info("val:   %d faces %s", len(val_ds), val_ds.class_counts())

    weights = class_weights(train_ds.labels, args.class_weight_power) if args.class_weight_power > 0 else None
    log.info("class weights: %s", {LABELS[i]: round(w, 2) for i, w in (weights or {}).items()})
    ds_tr, ds_val = make_datasets(train_ds, val_ds, args.batch, args.seed, weights, soft, args.erase_prob, args.mixup)

    if args.init:
        # Fine-tuning (a second schedule on a trained model, or a user's own faces) starts from its weights.
        model = keras.models.load_model(args.init, compile=False)
        log.info("starting from %s", args.init)
    else:
        model = build(args.arch)
    log.info("%s: %d parameters, %.1f M multiply-adds", args.arch, model.count_params(), multiply_adds(model) / 1e6)
    steps = int(np.ceil(len(train_ds) / args.batch)) * args.epochs
    if args.arch == "seed_cnn" and args.optimizer == "adam" and args.cycles == 1:
        lr = args.lr or 1e-4  # as published: plain Adam, small constant rate
    elif args.cycles > 1:
        # Cosine with warm restarts (SGDR): each restart shakes the weights out of a sharp minimum.
        lr = keras.optimizers.schedules.CosineDecayRestarts(args.lr or 2e-3, max(1, steps // args.cycles), alpha=0.01)
    else:
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, steps, warmup_target=args.lr or 2e-3, warmup_steps=steps // 30, alpha=0.01
        )
    model.compile(
        optimizer=optimizer(args.optimizer, lr, args.weight_decay),
        loss=distillation_loss(args.kd_temperature, args.kd_weight if soft is not None else 0.0, args.label_smoothing),
        metrics=[accuracy],
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=args.patience, restore_best_weights=False),
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
    p.add_argument(
        "--arch", default="moodnet", help="seed_cnn | moodnet (default) | moodnet_w48; teachers: moodnet_w72 | vgg_teacher"
    )
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
    p.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"), help="sgd = SGD with Nesterov momentum 0.9")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="for adamw and sgd")
    p.add_argument(
        "--cycles", type=int, default=1, help="cosine schedule with this many warm restarts (1 = one cosine with warm-up)"
    )
    p.add_argument("--erase-prob", type=float, default=0.0, help="random erasing: share of faces with a noise rectangle")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(a, a) parameter (0 = off; 0.2 is usual)")
    p.add_argument("--soft-targets", help="distill from a teacher ensemble's cached predictions (model_export.distill)")
    p.add_argument("--kd-temperature", type=float, default=4.0, help="distillation temperature")
    p.add_argument("--kd-weight", type=float, default=0.7, help="share of the distillation term in the loss")
    p.add_argument("--add-val", action="store_true", help="train on train+val (the final fine-tune); use with --holdout-frac")
    p.add_argument(
        "--holdout-frac",
        type=float,
        default=0.0,
        help="hold back this share of the training faces to pick the epoch (instead of val)",
    )
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
