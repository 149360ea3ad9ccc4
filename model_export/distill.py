"""Soft targets from a teacher ensemble, for training a device-sized student on them.

    python -m model_export.distill --teachers runs/t_vgg/best.keras runs/t_w72/best.keras \\
        --data ../shared/data/fer2013 --out runs/soft_targets.npz
    python -m model_export.train --data ../shared/data/fer2013 --arch moodnet --out runs/student \\
        --soft-targets runs/soft_targets.npz --kd-temperature 4 --kd-weight 0.7

Every teacher scores every face with the looks the device uses (the face and its mirror image, each
also tilted by ``--tilt-deg``), and the ensemble's average probabilities are saved per split with a
fingerprint of that split's images, so ``train.py`` refuses targets made for other images or another
order. Teachers are too slow for the Pi; what reaches the device is the student, exported as usual.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from model_export.data import Dataset, load

log = logging.getLogger(__name__)


def fingerprint(ds: Dataset) -> str:
    """Names the exact images and their order: soft targets only fit the data set they were made from."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(ds.images).tobytes())
    h.update(np.ascontiguousarray(ds.labels).tobytes())
    return h.hexdigest()[:20]


def _rotate(batch: np.ndarray, angle: float) -> np.ndarray:
    from moodbox.vision.looks import _tilt

    return _tilt(batch, angle)


def ensemble_probs(models: list, images: np.ndarray, tilt_deg: tuple[float, ...] = (6.0, -6.0), batch: int = 512) -> np.ndarray:
    """(N, 7) probabilities averaged over teachers and looks: face, mirror, and both tilted."""
    x = images.astype(np.float32)[..., None] / 255.0
    total = np.zeros((len(x), models[0].outputs[0].shape[-1]), np.float64)
    looks = 0
    for model in models:
        for mirrored in (False, True):
            base = np.ascontiguousarray(x[:, :, ::-1]) if mirrored else x
            for angle in (0.0, *tilt_deg):
                view = base if angle == 0.0 else _rotate(base, angle)
                total += model.predict(view, batch_size=batch, verbose=0)
                looks += 1
    return (total / looks).astype(np.float32)


def make_soft_targets(
    teachers: list[Path],
    data: str,
    out: Path,
    splits: tuple[str, ...] = ("train", "val"),
    tilt_deg: tuple[float, ...] = (6.0, -6.0),
    cache_dir: str | None = ".cache/fer2013",
) -> Path:
    import keras

    models = [keras.models.load_model(t, compile=False) for t in teachers]
    arrays: dict[str, np.ndarray] = {}
    for split in splits:
        ds = load(data, split, cache_dir=Path(cache_dir) if cache_dir else None)
        probs = ensemble_probs(models, ds.images, tilt_deg)
        acc = float((probs.argmax(1) == ds.labels).mean())
        log.info("%s: %d faces, teacher ensemble accuracy %.2f %%", split, len(ds), 100 * acc)
        arrays[f"{split}_probs"] = probs
        arrays[f"{split}_fingerprint"] = np.array(fingerprint(ds))
        arrays[f"{split}_accuracy"] = np.array(acc)
    arrays["teachers"] = np.array([str(t) for t in teachers])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    log.info("soft targets: %s", out)
    return out


class SoftTargetError(ValueError):
    """Soft targets that do not fit the data set being trained on."""


def soft_targets_for(path: str | Path, split: str, ds: Dataset) -> np.ndarray:
    """The cached ensemble probabilities for ``ds``, checked against its fingerprint."""
    with np.load(path) as z:
        key = f"{split}_probs"
        if key not in z:
            raise SoftTargetError(
                f"{path}: no soft targets for the {split} split (made for: {', '.join(k[:-6] for k in z if k.endswith('_probs'))})"
            )
        if str(z[f"{split}_fingerprint"]) != fingerprint(ds):
            raise SoftTargetError(
                f"{path}: the {split} soft targets were made from other images (or another order); run distill.py again"
            )
        return z[key].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teachers", nargs="+", required=True, type=Path, help="trained teacher models (.keras)")
    p.add_argument("--data", required=True, help="fer2013.csv, or a folder with train/<emotion>/ and val/<emotion>/")
    p.add_argument("--out", required=True, type=Path, help="the .npz to write")
    p.add_argument("--splits", default="train,val")
    p.add_argument("--tilt-deg", default="6,-6", help="tilted looks, degrees ('' for none)")
    p.add_argument("--cache-dir", default=".cache/fer2013")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    missing = [str(t) for t in args.teachers if not t.is_file()]
    if missing:
        p.error(f"no such teacher model: {', '.join(missing)}")
    tilts = tuple(float(a) for a in args.tilt_deg.split(",") if a.strip())
    make_soft_targets(
        args.teachers, args.data, args.out, tuple(s for s in args.splits.split(",") if s), tilts, args.cache_dir or None
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
