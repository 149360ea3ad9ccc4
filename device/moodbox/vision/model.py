"""The emotion model's files and metadata (docs/model.md): which labels, which input, which looks.

Any program preprocesses from the metadata JSON alone, so any model with correct metadata can be dropped
in (``model.path``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).parents[1] / "models"  # device/moodbox/models, shipped in the wheel
DEFAULT_MODEL = MODELS_DIR / "moodnet.tflite"


class ModelError(RuntimeError):
    """The model or its metadata cannot be used; the message names the file."""


@dataclass(frozen=True)
class ModelMeta:
    labels: tuple[str, ...]
    width: int
    height: int
    color: str  # "gray" | "rgb"
    scale: float
    offset: float
    face_margin: float = 0.0
    # Average the scores of the face and its mirror image: faces are symmetric enough that this steadies
    # the answer on ambiguous faces (and adds a little accuracy) for a second, cheap inference.
    mirror_average: bool = False
    # A second look at ambiguous faces: when the best two scores of the first look are closer than
    # ``tilt_below_margin``, the face (and its mirror) is scored again tilted by each of ``tilt_deg``
    # and all the looks are averaged. Tilts are what the network saw in training, and a face that sits
    # between two emotions is read more reliably from several; clear faces (most) cost nothing extra.
    tilt_deg: tuple[float, ...] = ()
    tilt_below_margin: float = 0.0
    source: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelMeta:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: model metadata file not found (it must sit beside the .tflite)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: cannot read model metadata: {exc}") from None
        try:
            inp = raw["input"]
            meta = cls(
                labels=tuple(str(x) for x in raw["labels"]),
                width=int(inp["width"]),
                height=int(inp["height"]),
                color=str(inp.get("color", "gray")),
                scale=float(inp.get("scale", 1.0 / 255.0)),
                offset=float(inp.get("offset", 0.0)),
                face_margin=float(raw.get("face_margin", 0.0)),
                mirror_average=bool(raw.get("mirror_average", False)),
                tilt_deg=tuple(float(a) for a in raw.get("tilted_views", {}).get("angles_deg", ())),
                tilt_below_margin=float(raw.get("tilted_views", {}).get("below_margin", 0.0)),
                source=str(raw.get("source", "")),
                metrics=dict(raw.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{path}: malformed model metadata ({exc!r}); see docs/model.md for the format") from None
        if meta.color not in ("gray", "rgb"):
            raise ModelError(f"{path}: input.color must be 'gray' or 'rgb', not {meta.color!r}")
        if not meta.labels or meta.width <= 0 or meta.height <= 0:
            raise ModelError(f"{path}: labels must be non-empty and the input size positive")
        if not 0.0 <= meta.tilt_below_margin <= 1.0:
            raise ModelError(f"{path}: tilted_views.below_margin must be between 0 and 1, not {meta.tilt_below_margin}")
        return meta
