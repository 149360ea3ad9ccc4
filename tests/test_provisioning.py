"""The systemd unit and the Ansible role, checked without a Pi."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_unit_has_the_promised_settings():
    unit = (ROOT / "systemd" / "moodbox.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "RestartSec=",
        "SupplementaryGroups=video",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=moodbox",
        "LoadCredential=mqtt_password:",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-media rw",
        "DeviceAllow=char-dma_heap rw",
        "RestartPreventExitStatus=2",
    ):
        assert line in unit, line


@pytest.mark.parametrize("name", ["moodbox.service", "moodbox-library-scan.service", "moodbox-library-scan.timer"])
def test_systemd_analyze_verify_is_clean(tmp_path, name):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    moodbox = BIN / "moodbox"
    for unit_name in {name, name.replace(".timer", ".service")}:  # a timer is verified with its service
        unit = (ROOT / "systemd" / unit_name).read_text().replace("/opt/moodbox/venv/bin/moodbox", str(moodbox))
        (tmp_path / unit_name).write_text(unit)
    proc = subprocess.run([exe, "verify", str(tmp_path / name)], capture_output=True, text=True)
    problems = [l for l in (proc.stdout + proc.stderr).splitlines() if "moodbox" in l]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_library_scan_unit_runs_nightly_at_low_priority_as_the_moodbox_user():
    service = (ROOT / "systemd" / "moodbox-library-scan.service").read_text()
    timer = (ROOT / "systemd" / "moodbox-library-scan.timer").read_text()
    for line in (
        "Type=oneshot",
        "Nice=10",
        "IOSchedulingClass=idle",
        "User=moodbox",
        "StateDirectory=moodbox",
        "ProtectSystem=strict",
    ):
        assert line in service, line
    assert "moodbox library scan --config /etc/moodbox/config.yaml" in service
    assert "OnCalendar=*-*-* 03:30" in timer and "Persistent=true" in timer
    tasks = (ROOT / "ansible" / "roles" / "moodbox" / "tasks" / "main.yml").read_text()
    assert "moodbox-library-scan.timer" in tasks and "- ffmpeg" in tasks


def test_role_requirements_match_pyproject():
    """The same pins, but numpy: on the Pi the venv is held to the system's (the one picamera2 is built on)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    role = yaml.safe_load((ROOT / "ansible" / "roles" / "moodbox" / "defaults" / "main.yml").read_text())
    assert role["moodbox_requirements"] == [d for d in deps if not d.startswith("numpy")]
    tasks = (ROOT / "ansible" / "roles" / "moodbox" / "tasks" / "main.yml").read_text()
    assert "'numpy==' ~ moodbox_system_numpy.stdout" in tasks and "--only-binary=:all:" in tasks


@pytest.mark.parametrize(
    "model, output",
    [
        ("Raspberry Pi 4 Model B Rev 1.4", "plughw:CARD=Headphones"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", "plughw:CARD=Headphones"),
        ("Raspberry Pi 5 Model B Rev 1.0", "plughw:CARD=vc4hdmi0"),
        ("Raspberry Pi 500 Rev 1.0", "plughw:CARD=vc4hdmi0"),
        ("Raspberry Pi Compute Module 5 Rev 1.0", "plughw:CARD=vc4hdmi0"),
        ("", "default"),
    ],
)
def test_audio_output_defaults_to_the_boards_own(model, output):
    """A Pi 5 has no 3.5 mm jack: "auto" must not point MPD at one there (Pi 4: the jack; elsewhere ALSA's default)."""
    assert _audio_output(model, "auto") == output
    assert _audio_output(model, "plughw:CARD=Device") == "plughw:CARD=Device"  # the owner's choice wins


def _audio_output(model: str, device: str) -> str:
    import base64
    import json

    board = json.dumps({"moodbox_board": {"content": base64.b64encode(model.encode() + b"\x00").decode()}})
    proc = subprocess.run(
        [
            _ansible("ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "var=moodbox_audio_output",
            "-e",
            "@roles/moodbox/vars/main.yml",
            "-e",
            board,
            "-e",
            f"moodbox_audio_device={device}",
        ],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return re.search(r'"moodbox_audio_output": "([^"]*)"', proc.stdout).group(1)


def _ansible(tool: str) -> str:
    path = BIN / tool
    if not path.exists():
        pytest.skip(f"{tool} not installed (scripts/setup --all installs it)")
    return str(path)


def test_playbook_syntax_check():
    proc = subprocess.run(
        [_ansible("ansible-playbook"), "-i", "inventory/hosts.example.yml", "site.yml", "--syntax-check"],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_production_profile():
    proc = subprocess.run(
        [_ansible("ansible-lint"), "--profile", "production", "--nocolor", "site.yml"],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"0 failure\(s\), 0 warning\(s\)", proc.stdout + proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_converge_into_debian_chroot_twice(release):
    """scripts/provision-test: debootstrap the release, converge the role twice, second run changes nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap and chroot)")
    proc = subprocess.run([str(ROOT / "scripts" / "provision-test"), release], capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "second run changed nothing" in proc.stdout
    assert f"provision-test: {release} " in proc.stdout and "the venv uses the system's numpy" in proc.stdout


# --- the unit's sandbox, imitated (tests/sandbox.py): what the hardening costs the box -----------------


def _sandbox() -> list[str]:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("systemd-analyze"):
        pytest.skip("the sandbox imitation needs root, unshare and systemd-analyze")
    import ctypes.util

    if ctypes.util.find_library("seccomp") is None:
        pytest.skip("libseccomp is not installed")
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes; import sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0)"]
    )
    if probe.returncode != 0:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3) to imitate MemoryDenyWriteExecute")
    return [sys.executable, str(ROOT / "tests" / "sandbox.py")]


@pytest.mark.parametrize("name", ["moodbox.service", "moodbox-library-scan.service"])
def test_unit_security_exposure_at_most_1_5(tmp_path, name):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    path = tmp_path / name
    path.write_text((ROOT / "systemd" / name).read_text())
    proc = subprocess.run([exe, "security", "--offline=true", str(path)], capture_output=True, text=True)
    m = re.search(rf"Overall exposure level for {name}: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 1.5, proc.stdout


def test_unit_reloads_with_sighup():
    unit = (ROOT / "systemd" / "moodbox.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def test_the_sandbox_imitation_is_not_a_no_op():
    cmd = _sandbox()
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
        "wx = libc.mmap(None, 4096, 7, 0x22, -1, 0)\n"
        "try:\n    os.setpriority(os.PRIO_PROCESS, 0, 5); nice = 'allowed'\nexcept PermissionError:\n    nice = 'refused'\n"
        "print(wx in (None, 2**64 - 1), nice)\n"
    )
    proc = subprocess.run([*cmd, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["True", "refused"], proc.stdout + proc.stderr  # W+X memory and @resources refused


def test_litert_with_xnnpack_works_inside_the_unit_sandbox(astronaut_png):
    """MemoryDenyWriteExecute, the system-call filter and ProtectProc cost the model nothing."""
    proc = subprocess.run(
        [*_sandbox(), str(BIN / "moodbox"), "--log-level", "INFO", "analyze", str(astronaut_png), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert ", XNNPACK delegate" in proc.stderr, "XNNPACK was not used: " + proc.stderr
    assert '"emotion": "happy"' in proc.stdout


def test_library_scan_works_inside_its_unit_sandbox(tmp_path):
    """ffmpeg and LiteRT under the scan unit's system-call filter and MemoryDenyWriteExecute."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed: scripts/setup installs it")
    from devtools.servers import Mpd, make_library

    music, playlists = make_library(tmp_path / "lib", [{"file": f"t{i}.ogg", "genre": "Pop"} for i in range(2)], seconds=4.0)
    cfg = tmp_path / "moodbox.yaml"
    with Mpd(tmp_path / "mpd", music, playlists) as server:
        music_cfg = {
            "mpd": {"host": "127.0.0.1", "port": server.port},
            "library_dir": str(music),
            "state_dir": str(tmp_path / "state"),
        }
        cfg.write_text(yaml.safe_dump({"music": music_cfg}))
        proc = subprocess.run(
            [*_sandbox(), str(BIN / "moodbox"), "library", "scan", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MOODBOX_SANDBOX_UNIT": "moodbox-library-scan.service"},
        )
    assert proc.returncode == 0, proc.stderr
    assert "2 heard now" in proc.stdout and "Traceback" not in proc.stderr


# --- the role's secrets and listeners (issue 15 item 9) ------------------------------------------------

ROLE = ROOT / "ansible" / "roles" / "moodbox"


def _render(template: str, **overrides) -> str:
    jinja2 = pytest.importorskip("jinja2", reason="jinja2 comes with ansible-core (scripts/setup --all)")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    text = (ROLE / "templates" / template).read_text()
    # vars/main.yml's (tested with ansible above and below): a Pi 4 on its own
    derived = {"moodbox_audio_output": "plughw:CARD=Headphones", "moodbox_group_role": "", "moodbox_group_name": ""}
    return env.from_string(text).render(**{**defaults, **derived, "ansible_managed": "managed", **overrides})


def test_local_broker_is_localhost_and_anonymous_only_without_a_user():
    conf = _render("mosquitto-moodbox.conf.j2")
    assert "listener 1883 localhost" in conf and "allow_anonymous true" in conf and "password_file" not in conf


def test_local_broker_with_a_user_gets_a_password_file():
    """It used to write allow_anonymous false with no password_file: mosquitto refused everyone."""
    conf = _render("mosquitto-moodbox.conf.j2", moodbox_mqtt_username="moodbox")
    assert "allow_anonymous false" in conf and "password_file /etc/mosquitto/moodbox.passwd" in conf
    assert "listener 1883 localhost" in conf
    lan = _render("mosquitto-moodbox.conf.j2", moodbox_mqtt_username="moodbox", moodbox_local_broker_listen_lan=True)
    assert "listener 1883\n" in lan and "allow_anonymous false" in lan


def test_mpd_on_the_lan_only_when_asked():
    assert 'bind_to_address    "localhost"' in _render("mpd.conf.j2")
    assert 'device      "plughw:CARD=Headphones"' in _render("mpd.conf.j2")
    lan = _render("mpd.conf.j2", moodbox_mpd_listen_lan=True, moodbox_mpd_password="pw")
    assert 'bind_to_address    "any"' in lan and 'password           "pw@read,add,control,admin"' in lan


def test_role_writes_password_files_for_their_readers_only():
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    by_dest = {}
    for t in tasks:
        for module in ("ansible.builtin.template", "ansible.builtin.copy", "ansible.builtin.file"):
            args = t.get(module) or {}
            dest = args.get("dest") or args.get("path")
            if dest:
                by_dest.setdefault(str(dest), []).append(args)
    mpd = by_dest["/etc/mpd.conf"][0]
    assert (mpd["owner"], mpd["group"], mpd["mode"]) == ("mpd", "root", "0640")  # it was 0644 with the password
    for args in by_dest["/etc/mosquitto/moodbox.passwd"]:
        assert (args["owner"], args["group"], args["mode"]) == ("mosquitto", "mosquitto", "0640")
    creds = by_dest["/etc/moodbox/credentials/{{ item.name }}"][0]
    assert creds["mode"] == "0600"
    for t in tasks:
        if "ansible.builtin.apt" in t:
            assert t["ansible.builtin.apt"].get("install_recommends") is False, t["name"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"moodbox_mpd_listen_lan": True}, "moodbox_mpd_password is empty"),
        (
            {"moodbox_local_broker": True, "moodbox_local_broker_listen_lan": True},
            "anyone on the network could switch privacy off",
        ),
        ({"moodbox_local_broker": True, "moodbox_mqtt_username": "box"}, "mosquitto would refuse everyone"),
    ],
)
def test_role_refuses_open_or_locked_settings(tmp_path, settings, message):
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "connection": "local",
                    "vars": settings,
                    "tasks": [{"ansible.builtin.include_role": {"name": str(ROLE), "tasks_from": "validate"}}],
                }
            ]
        )
    )
    proc = subprocess.run(
        [_ansible("ansible-playbook"), "-i", "localhost,", str(playbook)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        timeout=120,
    )
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-2000:]


def test_role_accepts_the_safe_lan_settings(tmp_path):
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "connection": "local",
                    "vars": {
                        "moodbox_mpd_listen_lan": True,
                        "moodbox_mpd_password": "pw",
                        "moodbox_local_broker": True,
                        "moodbox_local_broker_listen_lan": True,
                        "moodbox_mqtt_username": "box",
                        "moodbox_mqtt_password": "pw",
                    },
                    "tasks": [{"ansible.builtin.include_role": {"name": str(ROLE), "tasks_from": "validate"}}],
                }
            ]
        )
    )
    proc = subprocess.run(
        [_ansible("ansible-playbook"), "-i", "localhost,", str(playbook)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]


# --- groups of boxes: Snapcast from the inventory (docs/multiroom.md) ----------------------------------

GROUP_INVENTORY = {
    "moodbox": {
        "hosts": {
            "livingroom-moodbox": {"ansible_host": "192.168.1.20", "moodbox_device_id": "living"},
            "kitchen-moodbox": {"ansible_host": "192.168.1.21", "moodbox_device_id": "kitchen"},
            "bedroom-moodbox": {"moodbox_device_id": "bedroom"},
            "garage-moodbox": {"moodbox_device_id": "garage"},
        },
        "vars": {
            "moodbox_groups": {"house": {"leader": "livingroom-moodbox", "members": ["kitchen-moodbox", "bedroom-moodbox"]}}
        },
    }
}


def _group_var(tmp_path, var: str, inventory: dict = GROUP_INVENTORY) -> dict:
    import json

    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory))
    proc = subprocess.run(
        [_ansible("ansible"), "all", "-o", "-i", str(inv), "-c", "local", "-m", "ansible.builtin.debug", "-a", f"var={var}"]
        + ["-e", "@roles/moodbox/vars/main.yml"],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {m.group(1): json.loads(m.group(2))[var] for m in re.finditer(r"^(\S+) \| SUCCESS => (\{.*\})$", proc.stdout, re.M)}


def test_the_inventory_group_makes_a_leader_and_followers(tmp_path):
    config = _group_var(tmp_path, "moodbox_group_config")
    assert config["livingroom-moodbox"] == {"group": {"name": "house", "role": "leader", "members": ["kitchen", "bedroom"]}}
    assert (
        config["kitchen-moodbox"]
        == config["bedroom-moodbox"]
        == {"group": {"name": "house", "role": "follower", "leader": "living"}}
    )
    assert config["garage-moodbox"] == {}  # on its own, as before
    assert _group_var(tmp_path, "moodbox_snapcast_services") == {
        "livingroom-moodbox": ["snapserver", "snapclient"],
        "kitchen-moodbox": ["snapclient"],
        "bedroom-moodbox": ["snapclient"],
        "garage-moodbox": [],
    }
    address = _group_var(tmp_path, "moodbox_group_leader_address")
    assert (address["livingroom-moodbox"], address["kitchen-moodbox"], address["garage-moodbox"]) == (
        "127.0.0.1",
        "192.168.1.20",
        "",
    )


def test_snapserver_listens_for_control_on_localhost_unless_the_owner_says():
    conf = _render("snapserver.conf.j2")
    assert re.search(r"\[tcp\][^\[]*enabled = true\nbind_to_address = 127.0.0.1\n", conf)
    assert re.search(r"\[http\][^\[]*enabled = false", conf)  # no web interface, no second control port
    assert "source = pipe:///var/lib/moodbox-snapcast/fifo?name=moodbox&sampleformat=48000:16:2&mode=read" in conf
    lan = _render("snapserver.conf.j2", moodbox_snapcast_control_bind="0.0.0.0")
    assert re.search(r"\[tcp\][^\[]*bind_to_address = 0.0.0.0\n", lan)
    leader = _render("mpd.conf.j2", moodbox_group_role="leader", moodbox_group_name="house")
    assert 'type        "fifo"' in leader and '"alsa"' not in leader  # the leader's speaker is its snapclient's
    assert '"alsa"' in _render("mpd.conf.j2", moodbox_group_role="follower", moodbox_group_name="house")
    client = _render("snapclient.default.j2", moodbox_group_leader_address="192.168.1.20", moodbox_device_id="kitchen")
    assert "--host 192.168.1.20 --port 1704 --hostID kitchen --player alsa --soundcard plughw:CARD=Headphones" in client


@pytest.mark.parametrize(
    ("groups", "hosts", "message"),
    [
        ({"house": {"leader": "a", "members": ["nobody"]}}, {"a": "a"}, "each an inventory host"),
        (
            {"house": {"leader": "a", "members": ["b"]}, "flat": {"leader": "c", "members": ["b"]}},
            {"a": "a", "b": "b", "c": "c"},
            "one group only",
        ),
        ({"house": {"leader": "a", "members": ["b"]}}, {"a": "same", "b": "same"}, "its own"),
    ],
)
def test_role_refuses_a_group_that_cannot_work(tmp_path, groups, hosts, message):
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        yaml.safe_dump(
            {"moodbox": {"hosts": {h: {"moodbox_device_id": d} for h, d in hosts.items()}, "vars": {"moodbox_groups": groups}}}
        )
    )
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "moodbox",
                    "gather_facts": False,
                    "connection": "local",
                    "tasks": [{"ansible.builtin.include_role": {"name": str(ROLE), "tasks_from": "validate"}}],
                }
            ]
        )
    )
    proc = subprocess.run(
        [_ansible("ansible-playbook"), "-i", str(inv), str(playbook)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        timeout=120,
    )
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-2000:]
