"""The systemd unit and the Ansible role, checked without a Pi."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_unit_has_the_promised_settings():
    unit = (ROOT / "systemd" / "moodbox.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartSec=", "SupplementaryGroups=video",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=moodbox",
                 "LoadCredential=mqtt_password:", "DeviceAllow=char-video4linux rw", "DeviceAllow=char-media rw",
                 "DeviceAllow=char-dma_heap rw", "RestartPreventExitStatus=2"):
        assert line in unit, line


def test_systemd_analyze_verify_is_clean(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    moodbox = BIN / "moodbox"
    unit = (ROOT / "systemd" / "moodbox.service").read_text().replace("/opt/moodbox/venv/bin/moodbox", str(moodbox))
    path = tmp_path / "moodbox.service"
    path.write_text(unit)
    proc = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True)
    problems = [l for l in (proc.stdout + proc.stderr).splitlines() if "moodbox.service" in l]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_role_requirements_match_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    role = yaml.safe_load((ROOT / "ansible" / "roles" / "moodbox" / "defaults" / "main.yml").read_text())
    assert role["moodbox_requirements"] == deps


def _ansible(tool: str) -> str:
    path = BIN / tool
    if not path.exists():
        pytest.skip(f"{tool} not installed (scripts/setup --all installs it)")
    return str(path)


def test_playbook_syntax_check():
    proc = subprocess.run(
        [_ansible("ansible-playbook"), "-i", "inventory/hosts.example.yml", "site.yml", "--syntax-check"],
        cwd=ROOT / "ansible", capture_output=True, text=True, env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_production_profile():
    proc = subprocess.run(
        [_ansible("ansible-lint"), "--profile", "production", "--nocolor", "site.yml"],
        cwd=ROOT / "ansible", capture_output=True, text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"0 failure\(s\), 0 warning\(s\)", proc.stdout + proc.stderr)


@pytest.mark.slow
def test_converge_into_debian_chroot_twice():
    """scripts/provision-test: debootstrap bookworm, converge the role twice, second run changes nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap and chroot)")
    proc = subprocess.run([str(ROOT / "scripts" / "provision-test")], capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "second run changed nothing" in proc.stdout
