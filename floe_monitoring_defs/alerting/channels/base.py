"""The alert channel plugin interface (FR-026/027, SC-010) and how channels are found and built.

A channel type is a class registered in the entry-point group `floe.alert_channels` under its type
name (`webhook`, `slack`, `email`, `alertmanager`, `pagerduty`). Its `Config` (a frozen pydantic
model) is what the monitoring config file gives under `alerts.channels.<name>`; secrets are given
as the NAME of an environment variable (`*_env` keys) and read into `SecretStr` when the channel is
built, so no secret is ever written in a config file, a log, metadata or an error message.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from floe_monitoring_defs.alerting.model import AlertBatch, DeliveryResult, HealthStatus

ENTRY_POINT_GROUP = "floe.alert_channels"


# Every secret a channel was built with. Libraries log on their own (httpx logs each request URL at
# INFO, and a Slack webhook URL *is* a credential), so their loggers get a filter that masks these.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_LIBRARY_LOGGERS = ("httpx", "httpcore", "httpcore.http11", "httpcore.connection", "httpcore.proxy")


class RedactSecrets(logging.Filter):
    """Masks known secret values in a record's message (and drops its args, already formatted in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _SECRETS_LOCK:
            secrets = sorted(_SECRETS, key=len, reverse=True)
        if not secrets:
            return True
        text = record.getMessage()
        masked = text
        for s in secrets:
            masked = masked.replace(s, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True


_FILTER = RedactSecrets()


def register_secret(value: str) -> None:
    """Remember a secret so that library and monitor logs never show it."""
    if len(value) < 4:  # masking tiny strings would garble logs; such a "secret" protects nothing
        return
    with _SECRETS_LOCK:
        _SECRETS.add(value)
    for name in (*_LIBRARY_LOGGERS, "floe_monitoring_defs"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class ChannelConfigError(ValueError):
    """A channel's configuration is wrong; names the channel and the key, never a secret value."""


class ChannelConfig(BaseModel):
    """Base of every channel's config: frozen, unknown keys rejected, a delivery timeout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    timeout_seconds: float = 10.0


class AlertChannel(ABC):
    """One configured channel. `send` and `resolve` must never raise: failures are DeliveryResults."""

    type_name: ClassVar[str]
    Config: ClassVar[type[ChannelConfig]]

    def __init__(self, name: str, config: ChannelConfig, secrets: Mapping[str, SecretStr]) -> None:
        self.name = name
        self.config = config
        self.secrets = dict(secrets)

    @abstractmethod
    def send(self, batch: AlertBatch) -> DeliveryResult:
        """Deliver the batch's VIOLATION and OPERATIONAL items (one request per batch where possible)."""

    def resolve(self, batch: AlertBatch) -> DeliveryResult:
        """Deliver the batch's RESOLVED items. Channels without a resolve concept send them as notices."""
        return self.send(batch)

    @abstractmethod
    def validate_config(self) -> list[str]:
        """Problems with the configuration ([] = valid), each naming the key; called when definitions load."""

    def health_check(self) -> HealthStatus:
        return HealthStatus(True, "no health check for this channel type")

    def secret_values(self) -> list[str]:
        """Every secret this channel holds, for redaction by callers."""
        return [s.get_secret_value() for s in self.secrets.values() if s.get_secret_value()]

    def redact(self, text: str) -> str:
        for value in self.secret_values():
            text = text.replace(value, "***")
        return text


@functools.cache
def channel_types() -> dict[str, type[AlertChannel]]:
    """type name -> channel class, from the `floe.alert_channels` entry points."""
    found: dict[str, type[AlertChannel]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.load()
    return found


def build_channel(name: str, spec: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AlertChannel:
    """Build a configured channel; raises ChannelConfigError naming the channel and key."""
    env = os.environ if environ is None else environ
    where = f"alerts.channels.{name}"
    kind = spec.get("type")
    types = channel_types()
    if kind not in types:
        raise ChannelConfigError(f"{where}.type: {kind!r} is not a known channel type (known: {sorted(types)})")
    cls = types[str(kind)]
    plain = {k: v for k, v in spec.items() if not k.endswith("_env")}
    secrets: dict[str, SecretStr] = {}
    for key, var in spec.items():
        if key.endswith("_env"):
            if not isinstance(var, str) or not var:
                raise ChannelConfigError(f"{where}.{key}: must name an environment variable")
            value = env.get(var)
            if not value:
                raise ChannelConfigError(f"{where}.{key}: environment variable {var} is not set")
            secrets[key[: -len("_env")]] = SecretStr(value)
            register_secret(value)
    try:
        config = cls.Config.model_validate(plain)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"])
        raise ChannelConfigError(f"{where}.{path}: {err['msg']}") from None
    channel = cls(name, config, secrets)
    problems = channel.validate_config()
    if problems:
        raise ChannelConfigError("; ".join(f"{where}: {p}" for p in problems))
    return channel
