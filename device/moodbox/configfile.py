"""Reading a config file safely: bytes -> YAML -> typed :class:`~moodbox.config.Config`, then the checks
that need the outside world (the model loads, the TLS files load).

Every problem becomes a :class:`ConfigError` line ``key.path: reason`` and never a traceback, because a
traceback under systemd means exit 1 and a restart every 5 s, while exit 2 (bad config) stops there.
``load_checked`` is the one function ``run``, ``check-config`` and every other command use, so
``check-config`` (and the Ansible ``validate:`` step, and ``ExecStartPre``) reject exactly what ``run`` does.
"""

from __future__ import annotations

import difflib
import os
import ssl
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from moodbox.config import Config

DEFAULT_CONFIG_PATH = Path("/etc/moodbox/config.yaml")
MAX_BYTES = 1 << 20  # a config is a few kB; anything this large is the wrong file
MAX_DEPTH = 32  # the deepest real key path is 4 levels
MAX_VALUES = 100_000  # after YAML aliases are expanded ("billion laughs")


class ConfigError(ValueError):
    """Every problem found in a config file, each as ``key.path: reason``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))

    def report(self) -> str:
        n = len(self.errors)
        head = f"{self.source}: {n} error{'s' if n != 1 else ''}"
        return "\n".join([head, *(f"  {e}" for e in self.errors)])


# --- bytes -> YAML ---------------------------------------------------------------------------------------


def _node_problems(root: yaml.Node) -> list[str]:
    """Duplicate keys (PyYAML silently keeps the last), nesting too deep, and alias bombs, found on the
    node tree before anything is built from it."""
    problems: list[str] = []
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if id(node) in sizes:  # an alias: the same node again; count it once more, do not walk it again
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise _TooDeep(node)
        n = 1
        if isinstance(node, yaml.MappingNode):
            n += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n += sum(size(v, depth + 1) for v in node.value)
        sizes[id(node)] = n
        return n

    def duplicates(node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int]) -> None:
        if id(node) in seen_nodes:
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                key = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
                line = k.start_mark.line + 1
                if isinstance(k, yaml.ScalarNode) and key != "<<":
                    if key in first:
                        problems.append(f"{'.'.join((*path, key))}: duplicate key (lines {first[key]} and {line}); keep one")
                    else:
                        first[key] = line
                duplicates(v, (*path, key), seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                duplicates(v, (*path, str(i)), seen_nodes)

    try:
        total = size(root, 0)
    except _TooDeep as exc:
        return [f"line {exc.node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep"]
    if total > MAX_VALUES:
        return [f"(top level): expands to more than {MAX_VALUES} values (YAML anchors and aliases?)"]
    duplicates(root, (), set())
    return problems


class _TooDeep(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"{where}not valid YAML: the character 0x{code:02x} at offset {exc.position} is not allowed in a text file"
    return f"{where}not valid YAML: {getattr(exc, 'problem', None) or exc}"


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a :class:`ConfigError` naming the file for anything else."""
    src = str(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(src, ["not a regular file"])  # a FIFO would block, a folder cannot be read
        if st.st_size > MAX_BYTES:
            raise ConfigError(src, [f"{st.st_size} bytes: too large for a config file (at most {MAX_BYTES})"])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(src, ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(src, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            src, [f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); is this a config file?"]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        problems = _node_problems(node)
        if problems:
            raise ConfigError(src, problems)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(src, [_yaml_error(exc)]) from None
    except RecursionError:
        raise ConfigError(src, ["nested too deeply to read"]) from None


# --- YAML -> Config ------------------------------------------------------------------------------------


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _suggest(loc: tuple[Any, ...]) -> str:
    """'did you mean' for an unknown key, from the fields of the section it sits in."""
    model: Any = Config
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return ""
        model = field.annotation
    names = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(names)})" if names else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _messages(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            out.append(f"{_path(loc)}: unknown key{_suggest(loc)}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = f" (got {_shown(got)})" if not isinstance(got, (dict, list)) and err["type"] != "missing" else ""
        out.append(f"{_path(loc)}: {msg}{shown}")
    return out


def parse(data: Any, source: str = "config") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping of sections, got {type(data).__name__}"])
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(source, [f"{_shown(k)}: section names are words, not {type(k).__name__}" for k in bad_keys])
    try:
        return Config.model_validate(data, context={"labels": _model_labels(data)})
    except ValidationError as exc:
        raise ConfigError(source, _messages(exc)) from None
    except RecursionError:
        raise ConfigError(source, ["nested too deeply to check"]) from None


def _model_labels(data: dict[str, Any]) -> tuple[str, ...] | None:
    """The labels in the configured model's metadata, which the strategies must cover (any model with
    correct metadata can be dropped in); None where it cannot be read (check() reports the model then)."""
    from moodbox.vision.emotions import DEFAULT_MODEL, ModelError, ModelMeta

    model = data.get("model")
    path = model.get("path") if isinstance(model, dict) else None
    try:
        return tuple(ModelMeta.load(Path(str(path or DEFAULT_MODEL)).with_suffix(".json")).labels)
    except (ModelError, OSError, ValueError, TypeError):
        return None


def read_secret(env_name: str, credential: str, env: Mapping[str, str] | None = None) -> str | None:
    """A secret from ``$env_name``, else from the systemd credential ``credential`` (LoadCredential=)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get(env_name):
        return environ[env_name]
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        f = Path(cred_dir) / credential
        if f.is_file():
            try:
                return f.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    str(f), [f"credential {credential}: cannot read: {getattr(exc, 'strerror', None) or exc}"]
                ) from None
    return None


def with_secrets(cfg: Config, env: dict[str, str] | None = None) -> Config:
    mqtt_pw = read_secret("MOODBOX_MQTT_PASSWORD", "mqtt_password", env)
    mpd_pw = read_secret("MOODBOX_MPD_PASSWORD", "mpd_password", env)
    if mqtt_pw:
        cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"password": mqtt_pw})})
    if mpd_pw:
        mpd = cfg.music.mpd.model_copy(update={"password": mpd_pw})
        cfg = cfg.model_copy(update={"music": cfg.music.model_copy(update={"mpd": mpd})})
    return cfg


def load(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load ``path`` (default: /etc/moodbox/config.yaml if present, else built-in defaults), then fill
    secrets from the environment or systemd credentials. Checks the file only, not what it points at."""
    if path is None:
        cfg = parse(read_yaml(DEFAULT_CONFIG_PATH), str(DEFAULT_CONFIG_PATH)) if DEFAULT_CONFIG_PATH.exists() else Config()
        return with_secrets(cfg, env)
    p = Path(path)
    return with_secrets(parse(read_yaml(p), str(p)), env)


# --- what the config points at -------------------------------------------------------------------------


def _model_problems(cfg: Config) -> list[str]:
    """The model loads in the interpreter with its metadata, exactly as the daemon will load it."""
    from moodbox.vision.emotions import EmotionClassifier, ModelError

    try:
        EmotionClassifier(cfg.model.path, threads=cfg.model.threads)
    except ModelError as exc:
        return [f"model.path: {exc}"]
    return []


def _tls_problems(cfg: Config) -> list[str]:
    """The CA, certificate and key load with ssl as paho will load them (paho's own errors are an
    unnamed FileNotFoundError or "PEM lib")."""
    tls = cfg.mqtt.tls
    if not (cfg.mqtt.enabled and tls.enabled):
        return []
    problems: list[str] = []
    ctx = ssl.create_default_context()
    for key in ("ca_file", "cert_file", "key_file"):
        f: Path | None = getattr(tls, key)
        if f is None:
            continue
        if not f.is_file():
            problems.append(f"mqtt.tls.{key}: {f}: {'not a file' if f.exists() else 'file not found'}")
        elif not os.access(f, os.R_OK):
            problems.append(f"mqtt.tls.{key}: {f}: not readable by this user")
    if problems:
        return problems
    if tls.ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(f"mqtt.tls.ca_file: {tls.ca_file}: not a PEM CA certificate ({getattr(exc, 'reason', None) or exc})")
    if tls.key_file is not None and tls.cert_file is None:
        problems.append("mqtt.tls.cert_file: key_file is set but cert_file is not; set both or neither")
    elif tls.cert_file is not None:
        try:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            if tls.key_file is None:
                problems.append(
                    f"mqtt.tls.key_file: not set, and cert_file {tls.cert_file} holds no private key matching it "
                    f"({reason}); set key_file"
                )
            elif "KEY_VALUES_MISMATCH" in str(reason).upper():
                problems.append(f"mqtt.tls.key_file: {tls.key_file} is not the key of cert_file {tls.cert_file}")
            else:
                problems.append(
                    f"mqtt.tls.cert_file: {tls.cert_file} with key_file {tls.key_file}: cannot be loaded as a PEM "
                    f"certificate and private key ({reason})"
                )
    return problems


def check(cfg: Config, source: str = "config") -> Config:
    """What the file itself cannot show: the model and the TLS files are usable. Raises ConfigError."""
    problems = _tls_problems(cfg) + _model_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def load_checked(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """:func:`load` and then :func:`check`: the one validation ``run`` and ``check-config`` share."""
    cfg = load(path, env)
    source = str(path) if path is not None else str(DEFAULT_CONFIG_PATH) if DEFAULT_CONFIG_PATH.exists() else "built-in defaults"
    return check(cfg, source)
