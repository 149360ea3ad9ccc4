from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from moodbox import config, configfile
from moodbox.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_documented_default_file_equals_the_code():
    shipped = (ROOT / "config" / "moodbox.yaml").read_text()
    assert shipped == config.default_yaml(), "regenerate with: python -m moodbox.config > config/moodbox.yaml"
    assert configfile.load(ROOT / "config" / "moodbox.yaml", env={}) == config.Config()


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, config.BaseModel):
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
    f.write_text("music:\n  playlists: {happy: my_happy, calm: null}\n  queries: {calm: {artist: Enya}}\n  strategies: {uplift: {sad: [calm]}}\n")
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
