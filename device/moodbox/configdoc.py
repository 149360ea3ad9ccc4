"""The documented default config, ``config/moodbox.yaml``, rendered from the typed config's field
descriptions (``python -m moodbox.configdoc > config/moodbox.yaml``; a test keeps the two equal), so the
commented default file can never drift from the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from moodbox.config import Config


def _yaml_value(v: Any) -> str:
    if isinstance(v, Path):
        v = str(v)
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _render(model: type[BaseModel], instance: BaseModel, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.extend(_render(type(value), value, indent + 1))
        elif isinstance(value, dict):
            lines.append(f"{pad}{name}:")
            lines.extend(f"{pad}  {k}: {_yaml_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{pad}{name}: {_yaml_value(value)}")
        if indent == 0:
            lines.append("")
    return lines


def default_yaml() -> str:
    head = [
        "# moodbox configuration: every key, with its default. Generated from device/moodbox/config.py",
        "# (python -m moodbox.configdoc); copy to /etc/moodbox/config.yaml and change what you need.",
        "# Check a file with: moodbox check-config FILE",
        "",
    ]
    return "\n".join(head + _render(Config, Config(), 0)).rstrip() + "\n"


if __name__ == "__main__":
    print(default_yaml(), end="")
