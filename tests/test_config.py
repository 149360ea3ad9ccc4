from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from moodbox import config, configdoc, configfile
from moodbox.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_documented_default_file_equals_the_code():
    shipped = (ROOT / "config" / "moodbox.yaml").read_text()
    assert shipped == configdoc.default_yaml(), "regenerate with: python -m moodbox.configdoc > config/moodbox.yaml"
    assert configfile.load(ROOT / "config" / "moodbox.yaml", env={}) == config.Config()


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann)

    walk(config.Config)


def _errors(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(configfile.ConfigError) as exc:
        configfile.load(f, env={})
    return exc.value.errors


def test_unknown_key_names_path_and_suggests(tmp_path):
    errs = _errors(tmp_path, "camera:\n  fsp: 10\n")
    assert errs == ["camera.fsp: unknown key (did you mean 'fps'?)"]


def test_unknown_section(tmp_path):
    errs = _errors(tmp_path, "cameras: {}\n")
    assert len(errs) == 1 and errs[0].startswith("cameras: unknown key (did you mean 'camera'?)")


def test_all_errors_reported_not_only_first(tmp_path):
    errs = _errors(
        tmp_path,
        "camera: {width: -3, fps: abc}\nmqtt: {device_id: 'Bad Id', port: 70000}\nmusic: {strategy: cheerful, strategies: {match: {happpy: [x]}}}\n",
    )
    joined = "\n".join(errs)
    for key in ("camera.width", "camera.fps", "mqtt.device_id", "mqtt.port", "music.strategy", "music.strategies"):
        assert key + ":" in joined, joined
    assert len(errs) == 6
    assert "(got 'abc')" in joined and "happpy" in joined


def test_wrong_type_of_section(tmp_path):
    errs = _errors(tmp_path, "camera: 5\n")
    assert errs[0].startswith("camera:")


def test_top_level_not_a_mapping(tmp_path):
    errs = _errors(tmp_path, "- a\n- b\n")
    assert "expected a mapping" in errs[0]


def test_yaml_syntax_error_has_line(tmp_path):
    errs = _errors(tmp_path, "camera:\n  fps: 10\n   width: [\n")
    assert errs[0].startswith("line ") and "not valid YAML" in errs[0]


def test_missing_file(tmp_path):
    with pytest.raises(configfile.ConfigError) as exc:
        configfile.load(tmp_path / "nope.yaml")
    assert "file not found" in str(exc.value) and "nope.yaml" in str(exc.value)


def test_empty_file_is_defaults(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("")
    assert configfile.load(f, env={}) == config.Config()


def test_secrets_from_environment_and_credentials(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("mqtt: {username: box}\n")
    cfg = configfile.load(f, env={"MOODBOX_MQTT_PASSWORD": "s3cret"})
    assert cfg.mqtt.password == "s3cret"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("fromfile\n")
    (creds / "mpd_password").write_text("mpdpw\n")
    cfg = configfile.load(f, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert cfg.mqtt.password == "fromfile" and cfg.music.mpd.password == "mpdpw"


def test_check_config_exit_codes_and_output(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("camera: {source: '0', fps: 5}\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera: {fsp: 1, width: 0}\nsmoothing: {window_s: -1}\n")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 errors" in err and "camera.fsp" in err and "camera.width" in err and "smoothing.window_s" in err


def test_check_config_as_a_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera: {fps: [1,2]}\n")
    proc = subprocess.run([sys.executable, "-m", "moodbox", "check-config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "camera.fps" in proc.stderr and "Traceback" not in proc.stderr


def test_mood_maps_merge_over_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "music:\n  playlists: {happy: my_happy, calm: null}\n  queries: {calm: {artist: Enya}}\n  strategies: {uplift: {sad: [calm]}}\n"
    )
    m = configfile.load(f, env={}).music
    assert m.playlists["happy"] == "my_happy" and m.playlists["sad"] == "mood_sad" and "calm" not in m.playlists
    assert m.queries["calm"] == {"artist": "Enya"} and m.queries["happy"]["genre"].startswith("Pop")
    assert m.strategies["uplift"]["sad"] == ["calm"] and m.strategies["uplift"]["angry"] == ["calm"]


def test_unplayable_mood_rejected(tmp_path):
    errs = _errors(tmp_path, "music:\n  strategies: {match: {sad: [gloomy]}}\n  queries: {genre: {x: y}}\n")
    joined = "\n".join(errs)
    assert "music.queries: unknown tag(s) x" in joined
    errs = _errors(tmp_path, "music:\n  strategies: {match: {sad: [gloomy]}}\n")
    assert errs == ["music: mood(s) gloomy used in strategies have no playlist or query"]


# --- issue 15: what used to crash, or pass silently --------------------------------------------------


def test_duplicate_keys_are_errors_naming_key_and_lines(tmp_path):
    errs = _errors(tmp_path, "mqtt:\n  port: 1883\n  port: 8883\ncamera: {}\ncamera: {fps: 3}\n")
    assert errs == ["mqtt.port: duplicate key (lines 2 and 3); keep one", "camera: duplicate key (lines 4 and 5); keep one"]


def test_a_bool_is_not_a_number(tmp_path):
    errs = _errors(tmp_path, "mqtt: {port: true}\ncamera: {fps: yes}\nmusic: {mpd: {port: false}}\n")
    assert [e.split(":")[0] for e in errs] == ["camera.fps", "music.mpd.port", "mqtt.port"]
    assert all("must be a number, not true/false" in e for e in errs)


@pytest.mark.parametrize("topic", ["a//b", "a/", "/a", "a/+/b", "a/#", "$SYS", "a\0b", ""])
def test_topic_prefixes_that_would_break_mqtt(tmp_path, topic):
    for key in ("base_topic", "discovery_prefix"):
        with pytest.raises(configfile.ConfigError, match=f"mqtt.{key}"):
            configfile.parse({"mqtt": {key: topic}})


def test_empty_host_and_source_and_nul_anywhere():
    for data, key in (
        ({"mqtt": {"host": ""}}, "mqtt.host"),
        ({"music": {"mpd": {"host": " "}}}, "music.mpd.host"),
        ({"camera": {"source": ""}}, "camera.source"),
        ({"model": {"path": "m\0.tflite"}}, "model.path"),
        ({"mqtt": {"device_id": "box+1"}}, "mqtt.device_id"),
        ({"camera": {"fps": float("nan")}}, "camera.fps"),
    ):
        with pytest.raises(configfile.ConfigError) as exc:
            configfile.parse(data)
        assert exc.value.errors[0].startswith(key + ":"), exc.value.errors


def test_files_that_are_not_yaml_text(tmp_path):
    f = tmp_path / "c.yaml"
    for raw, expect in (
        (b"camera:\n  source: caf\xe9\n", "line 2: not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\0\0", "not UTF-8"),
        (b"camera: {fps: 1}\0", "0x00"),
        (b"a: " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ):
        f.write_bytes(raw)
        with pytest.raises(configfile.ConfigError) as exc:
            configfile.load(f, env={})
        assert expect in exc.value.errors[0], exc.value.errors
    f.write_bytes(b"# " + b"x" * (configfile.MAX_BYTES + 10))
    with pytest.raises(configfile.ConfigError, match="too large"):
        configfile.load(f, env={})
    with pytest.raises(configfile.ConfigError, match="not a regular file"):
        configfile.load(tmp_path, env={})
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(configfile.ConfigError, match="not a regular file"):  # reading it would block for ever
        configfile.load(fifo, env={})


def test_alias_bomb_is_refused_before_it_is_built(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    errs = _errors(tmp_path, "\n".join(lines) + "\n")
    assert errs == [f"(top level): expands to more than {configfile.MAX_VALUES} values (YAML anchors and aliases?)"]


def test_unreadable_credential_names_the_file(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_bytes(b"\xff\xfe")
    with pytest.raises(configfile.ConfigError, match="mqtt_password"):
        configfile.with_secrets(config.Config(), env={"CREDENTIALS_DIRECTORY": str(creds)})


def test_check_loads_the_model_and_names_model_path(tmp_path):
    shipped = ROOT / "device" / "moodbox" / "models" / "moodnet.tflite"
    lonely = tmp_path / "lonely.tflite"
    lonely.write_bytes(shipped.read_bytes())
    fake = tmp_path / "fake.tflite"
    fake.write_text("not a model")
    (tmp_path / "fake.json").write_text(shipped.with_suffix(".json").read_text())
    for path, expect in (
        (tmp_path / "gone.tflite", "model file not found"),
        (lonely, "lonely.json: model metadata file not found"),
        (fake, "not a valid TFLite model"),
    ):
        with pytest.raises(configfile.ConfigError) as exc:
            configfile.check(configfile.parse({"model": {"path": str(path)}}))
        [err] = exc.value.errors
        assert err.startswith("model.path: ") and expect in err, err
    assert configfile.check(config.Config()) == config.Config()  # the shipped model is fine


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    for name in ("key", "other"):
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.pem"],
            cwd=d,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=t"],
        cwd=d,
        check=True,
        capture_output=True,
    )
    (d / "junk.pem").write_text("junk\n")
    return d


def test_check_loads_the_tls_files_as_paho_will(pki):
    def errs(**tls):
        cfg = configfile.parse({"mqtt": {"tls": {"enabled": True, **{k: str(v) for k, v in tls.items()}}}})
        with pytest.raises(configfile.ConfigError) as exc:
            configfile.check(cfg)
        return exc.value.errors

    assert errs(ca_file=pki / "nope.pem") == [f"mqtt.tls.ca_file: {pki / 'nope.pem'}: file not found"]
    assert errs(ca_file=pki / "junk.pem")[0].startswith("mqtt.tls.ca_file:")
    assert errs(cert_file=pki / "cert.pem")[0].startswith("mqtt.tls.key_file: not set, and cert_file")
    assert errs(key_file=pki / "key.pem")[0].startswith("mqtt.tls.cert_file: key_file is set")
    assert errs(cert_file=pki / "cert.pem", key_file=pki / "other.pem")[0].startswith("mqtt.tls.key_file:")
    assert errs(cert_file=pki / "junk.pem", key_file=pki / "key.pem")[0].startswith("mqtt.tls.cert_file:")
    ok = configfile.parse(
        {
            "mqtt": {
                "tls": {
                    "enabled": True,
                    "ca_file": str(pki / "cert.pem"),
                    "cert_file": str(pki / "cert.pem"),
                    "key_file": str(pki / "key.pem"),
                }
            }
        }
    )
    assert configfile.check(ok) == ok
    off = configfile.parse({"mqtt": {"tls": {"enabled": False, "ca_file": str(pki / "nope.pem")}}})
    assert configfile.check(off) == off  # unused settings are not checked
