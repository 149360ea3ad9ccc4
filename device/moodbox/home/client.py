"""The paho client as moodbox uses it: MQTT 5, credentials, TLS, and failures named for what they are.

MQTT 5 because only its retain-as-published subscription option lets the box tell a retained command
that reaches it live from a fresh one (with 3.1.1 the broker clears the retain flag on live delivery).
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from moodbox.config import MqttConfig
from moodbox.home.discovery import Message

AUTH_HINT = " (check mqtt.username and MOODBOX_MQTT_PASSWORD / the mqtt_password credential)"


def make_client(cfg: MqttConfig, client_id: str) -> paho.Client:
    """A paho MQTT 5 client with the config's credentials and TLS settings."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if cfg.username:
        c.username_pw_set(cfg.username, cfg.password)
    if cfg.tls.enabled:
        c.tls_set(
            ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
            certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
            keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        c.tls_insecure_set(cfg.tls.insecure)
    return c


def is_auth_refusal(reason: Any) -> bool:
    """A CONNACK that will be refused again until someone changes a password or an ACL."""
    text = str(reason).lower()
    return "authori" in text or "password" in text or "banned" in text


def describe_connect_failure(exc: BaseException | None, where: str) -> tuple[str, bool]:
    """(what went wrong, whether retrying soon can help) for an exception from connecting."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or str(exc)
        return (
            f"the TLS certificate of the MQTT broker at {where} was rejected: {why} "
            f"(check mqtt.tls.ca_file and that mqtt.host matches the certificate)"
        ), False
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake with the MQTT broker at {where} failed: {exc.reason or exc} (check mqtt.tls)", False
    if isinstance(exc, socket.gaierror):
        return f"the MQTT broker host in {where} cannot be resolved: {exc.strerror or exc}", True
    if isinstance(exc, ConnectionRefusedError):
        return f"MQTT broker at {where} is unreachable (connection refused)", True
    if isinstance(exc, OSError) and (exc.strerror or str(exc)):
        return f"MQTT broker at {where} is unreachable ({exc.strerror or exc})", True
    return f"MQTT broker at {where} is unreachable", True


def publish_once(cfg: MqttConfig, messages: list[Message], timeout: float = 10.0) -> None:
    """Connect, publish, wait for delivery, disconnect: for ``moodbox discovery``. Raises ConnectionError
    with the broker's address and reason."""
    c = make_client(cfg, f"moodbox-{cfg.device_id}-cli")
    result: dict[str, Any] = {}
    ready = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        result["reason"] = reason
        ready.set()

    c.on_connect = on_connect
    where = f"{cfg.host}:{cfg.port}"
    try:
        c.connect(cfg.host, cfg.port, keepalive=30)
    except OSError as exc:
        raise ConnectionError(describe_connect_failure(exc, where)[0]) from None
    c.loop_start()
    try:
        if not ready.wait(timeout):
            raise ConnectionError(f"MQTT broker at {where} did not answer in {timeout:.0f} s")
        if result["reason"].is_failure:
            hint = AUTH_HINT if is_auth_refusal(result["reason"]) else ""
            raise ConnectionError(f"MQTT broker at {where} refused the connection: {result['reason']}{hint}")
        infos = [c.publish(m.topic, m.payload, qos=m.qos, retain=m.retain) for m in messages]
        for info in infos:
            info.wait_for_publish(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
