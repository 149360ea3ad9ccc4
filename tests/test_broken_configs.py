"""The broken-config corpus (tests/configs/broken/, issue 15): every file through `check-config` and `run`
as processes. Each must exit 2 with the key (or the line) named and no traceback, and the two commands
must agree, since the Ansible validate: step and ExecStartPre trust check-config to speak for run.

A text file names what its error must say in its first line (``# expect: mqtt.port``); a file that is not
text has a sidecar ``NAME.expect``. Paths in the corpus are relative to a work folder the test builds,
with the certificates, keys and model files the TLS and model cases point at.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.util import scaled

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "configs" / "broken"
MODEL = ROOT / "device" / "moodbox" / "models" / "moodnet.tflite"


def expectation(path: Path) -> str:
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.exists():
        return sidecar.read_text().strip()
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <key>'"
    return first.removeprefix("# expect: ").strip()


CASES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".yaml")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The corpus beside the files it points at: a certificate and key, another key, garbage, models."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (scripts/setup installs it)")
    work = tmp_path_factory.mktemp("corpus")
    files = work / "files"
    files.mkdir()
    for name in ("key", "other_key"):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.pem", cwd=files)
    _openssl("req", "-x509", "-new", "-key", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=moodbox-test", cwd=files)
    (files / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    (files / "notes.tflite").write_text("shopping list: milk\n")
    shutil.copy(MODEL.with_suffix(".json"), files / "notes.json")  # metadata fine: the model itself is not
    (files / "lonely").mkdir()
    shutil.copy(MODEL, files / "lonely" / "moodnet.tflite")
    (files / "badjson").mkdir()
    shutil.copy(MODEL, files / "badjson" / "moodnet.tflite")
    (files / "badjson" / "moodnet.json").write_text("{labels: [angry")
    return work


def _moodbox(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "moodbox", *args], cwd=cwd, capture_output=True, text=True, timeout=scaled(60), env=env
    )


def test_the_corpus_is_large_and_every_case_names_its_key():
    assert len(CASES) >= 50
    for path in CASES:
        assert expectation(path)


def test_every_broken_config_is_refused_alike_by_check_config_and_run(workdir):
    def one(path: Path) -> tuple[str, list[str]]:
        expect = expectation(path)
        problems = []
        results = {}
        for cmd in (["check-config", f"configs/{path.name}"], ["run", "--config", f"configs/{path.name}"]):
            proc = _moodbox(cmd, workdir)
            results[cmd[0]] = proc
            if "Traceback" in proc.stderr:
                problems.append(f"{cmd[0]}: traceback\n{proc.stderr[-1500:]}")
            if proc.returncode != 2:
                problems.append(f"{cmd[0]}: exit {proc.returncode}, not 2\n{proc.stderr[-800:]}")
            if expect not in proc.stderr:
                problems.append(f"{cmd[0]}: {expect!r} not named in:\n{proc.stderr[-800:]}")
        a, b = results["check-config"], results["run"]
        if a.returncode != b.returncode or _errors(a.stderr) != _errors(b.stderr):
            problems.append(f"check-config and run disagree:\n{a.stderr}\n---\n{b.stderr}")
        return path.name, problems

    (workdir / "configs").mkdir(exist_ok=True)
    for path in CASES:
        shutil.copy(path, workdir / "configs" / path.name)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, CASES))
    failed = {name: problems for name, problems in results if problems}
    report = "\n\n".join(f"== {name}\n" + "\n".join(p) for name, p in failed.items())
    assert not failed, f"{len(failed)} of {len(CASES)} broken configs mishandled:\n{report}"


def _errors(stderr: str) -> list[str]:
    """The error lines of a ConfigError report (LiteRT's own chatter aside)."""
    return [line for line in stderr.splitlines() if line.startswith("  ") or "error" in line]
