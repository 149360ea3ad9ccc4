"""The layout shows the flow (issue 25): vision, music and home know nothing of each other, imports have
no cycles, and no module grows past about 300 lines. Read from the source, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "device" / "moodbox"
MAX_LINES = 330  # "about 300"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str) -> set[str]:
    """Every moodbox module this one imports, at the top or inside a function."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("moodbox")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("moodbox"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {m for m in _imports(path, name) if m in mods and m != name} for name, path in mods.items()}


def test_vision_music_and_home_know_nothing_of_each_other():
    parts = ("moodbox.vision", "moodbox.music", "moodbox.home")
    bad = []
    for name, deps in _graph().items():
        mine = next((p for p in parts if name == p or name.startswith(p + ".")), None)
        if mine is None:
            continue
        for dep in deps:
            other = next((p for p in parts if dep == p or dep.startswith(p + ".")), None)
            if other is not None and other != mine:
                bad.append(f"{name} imports {dep}")
    assert not bad, bad


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its modules is not a cycle of the flow: leave those edges out
    edges = {
        n: {d for d in deps if not (Path(_modules()[d]).name == "__init__.py" and n.startswith(d + "."))}
        for n, deps in graph.items()
    }
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(n: str) -> None:
        seen[n] = 1
        stack.append(n)
        for d in sorted(edges[n]):
            if seen.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in seen:
                visit(d)
        stack.pop()
        seen[n] = 2

    for n in sorted(edges):
        if n not in seen:
            visit(n)
    assert not cycles, cycles


def test_no_module_over_about_300_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
