"""The alert channel plugin interface (FR-026/027, SC-010) and how channels are found and built.

A channel type is a class registered in the entry-point group `floe.alert_channels` under its type
name (`webhook`, `slack`, `email`, `alertmanager`, `pagerduty`). Its `Config` (a frozen pydantic
model) is what the monitoring config file gives under `alerts.channels.<name>`; secrets are given
as the NAME of an environment variable (`*_env` keys) and read into `SecretStr` when the channel is
built, so no secret is ever written in a config file, a log, metadata or an error message.

One bad channel never takes the others down: `open_channels` builds each configured channel on its own and
sets aside the ones it cannot build (a plugin that does not import, a wrong setting, a secret variable that is
not set) with the reason, which names the key and, for a secret, the variable's NAME, never a value.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from floe_monitoring_defs.alerting.model import AlertBatch, DeliveryResult, HealthStatus
from floe_monitoring_defs.config import env_var_name_problem
from floe_monitoring_defs.telemetry import redaction

_log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "floe.alert_channels"


# Every secret a channel is built with goes into the process-wide registry (telemetry/redaction.py), which
# masks it, in all the forms it can take (URL-normalised, token parts, percent-encoded, base64), in every log
# record of every logger (httpx logs each request URL, and a Slack webhook URL *is* a credential) and in the
# error texts channels return (`AlertChannel.redact`).
register_secret = redaction.register_secret


# How validate_config words a `*_env` key the channel type does not have (a typo): a problem of the key, which
# build_channel keeps even while that key's variable is unset.
NOT_A_SETTING = "not a setting of the"


class ChannelConfigError(ValueError):
    """A channel's configuration is wrong; names the channel and the key, never a secret value."""


class ChannelSecretMissing(ChannelConfigError):
    """The channel's settings are right but a secret variable it names is not set in this process."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


@dataclass(frozen=True)
class ChannelProblem:
    """Why a configured channel cannot deliver now. `variable`: the unset secret variable's NAME, when that is
    all that is wrong (setting it, where the code location runs, makes the channel work)."""

    channel: str
    reason: str
    variable: str | None = None


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
        """`text` with every form of every registered secret masked, this channel's own included (registered
        here too, for a channel built without `build_channel`)."""
        for value in self.secret_values():
            if value not in redaction.REGISTRY:
                redaction.register_secret(value)
        return redaction.redact(text)

    def close(self) -> None:
        """Release what the channel keeps between deliveries (pooled connections); it may deliver again after,
        opening them anew. A channel that keeps nothing has nothing to do."""
        return None


@functools.cache
def _plugins() -> tuple[dict[str, type[AlertChannel]], dict[str, str]]:
    found: dict[str, type[AlertChannel]] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin disables the channels of its type, not the code location
            broken[ep.name] = f"the channel plugin {ep.value} does not load ({type(exc).__name__})"
            _log.error("alert channel type %s unavailable: %s: %s", ep.name, broken[ep.name], exc)
    return found, broken


def channel_types() -> dict[str, type[AlertChannel]]:
    """type name -> channel class, from the `floe.alert_channels` entry points (those that load)."""
    return dict(_plugins()[0])


_KEYED = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]]*: ")  # "url: ...", "to_addresses[0]: ...": a problem of a key


def build_channel(name: str, spec: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AlertChannel:
    """Build a configured channel; raises ChannelConfigError naming the channel and key (ChannelSecretMissing
    when the settings are right and only a secret variable is unset). The settings are judged first, so a
    wrong setting is reported even while a secret is missing too."""
    env = os.environ if environ is None else environ
    where = f"alerts.channels.{name}"
    if not isinstance(spec, Mapping):
        raise ChannelConfigError(f"{where}: must be a mapping with the channel's `type` and settings")
    kind = spec.get("type")
    types, broken = _plugins()
    if isinstance(kind, str) and kind in broken:
        raise ChannelConfigError(f"{where}.type: {broken[kind]}")
    if kind not in types:
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 60 else "the value"
        raise ChannelConfigError(f"{where}.type: {shown} is not a known channel type (known: {sorted(types)})")
    cls = types[str(kind)]
    plain = {k: v for k, v in spec.items() if not str(k).endswith("_env")}
    secrets: dict[str, SecretStr] = {}
    unset: list[tuple[str, str]] = []
    for key, var in spec.items():
        if not str(key).endswith("_env"):
            continue
        problem = env_var_name_problem(var)
        if problem:
            raise ChannelConfigError(f"{where}.{key}: {problem}")
        value = env.get(var)
        if value:
            secrets[key[: -len("_env")]] = SecretStr(value)
            register_secret(value)
        else:
            unset.append((key, var))
    try:
        config = cls.Config.model_validate(plain)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        raise ChannelConfigError(f"{where}{path}: {err['msg']}") from None
    # The settings with a stand-in for each unset secret, so that what validate_config says about them is
    # about the settings; what it says about the stand-ins themselves is dropped.
    stand_ins = {key[: -len("_env")]: SecretStr("") for key, _ in unset}
    problems = cls(name, config, {**secrets, **stand_ins}).validate_config()
    problems = [p for p in problems if not any(p.startswith(f"{key}:") and NOT_A_SETTING not in p for key, _ in unset)]
    if problems:
        raise ChannelConfigError("; ".join(f"{where}.{p}" if _KEYED.match(p) else f"{where}: {p}" for p in problems))
    if unset:
        key, var = unset[0]
        raise ChannelSecretMissing(f"{where}.{key}: environment variable {var} is not set", var)
    return cls(name, config, secrets)


def open_channels(
    specs: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, AlertChannel], dict[str, ChannelProblem]]:
    """Every configured channel that can be built now, and why each other one cannot."""
    channels: dict[str, AlertChannel] = {}
    problems: dict[str, ChannelProblem] = {}
    for name, spec in specs.items():
        try:
            channels[name] = build_channel(name, spec, environ)
        except ChannelSecretMissing as exc:
            problems[name] = ChannelProblem(name, str(exc), exc.variable)
        except ChannelConfigError as exc:
            problems[name] = ChannelProblem(name, str(exc))
    return channels, problems
