"""What every config section shares: unknown keys refused, no true/false for a number, no NUL in text;
and the emotions of the FER2013 labels the defaults are written for."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers_or_nul(cls, v: Any, info: ValidationInfo) -> Any:
        """pydantic's lax mode reads ``port: true`` as 1; YAML's true/yes/on are never a number here. And a
        NUL in any text is a mistake that would only surface later, deep inside a library."""
        if isinstance(v, bool) and info.field_name and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("must be a number, not true/false")
        if isinstance(v, str) and "\0" in v:
            raise ValueError("must not contain a NUL character")
        return v


def _numeric(annotation: Any) -> bool:
    return annotation in (int, float) or any(a in (int, float) for a in getattr(annotation, "__args__", ()))


def _check_host(v: str) -> str:
    if not v.strip() or any(c.isspace() for c in v):
        raise ValueError("must be a host name, address or socket path (not empty, no spaces)")
    return v
