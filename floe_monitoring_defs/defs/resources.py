"""Dagster resources over the core: the monitoring store, the Iceberg catalogs and the alert channels.

Every op, check and sensor takes what it uses as typed resource parameters (`floe_store: MonitoringStoreResource`,
`iceberg: IcebergCatalogResource`, `alert_channels: AlertChannelsResource`); nothing is looked up by key. What a
resource opens it opens once per step (or sensor tick), in the process that runs it (`setup_for_execution`), and
releases after (`teardown_after_execution`).

`alert_channels` nests one `AlertChannelResource` per configured channel, as a field of its own (Dagster nests
resources through declared fields only, so `alert_channels_resource` makes the class of a location's channels);
each channel is a top-level resource too (`alert_channel_<name>`), so the UI lists every channel with its settings
and the NAMES of its secret variables.

Secrets are never resource config, metadata or log text:
- the store's URL (which may hold a password) is `dg.EnvVar("FLOE_MONITORING_DB_URL")`, resolved by Dagster when
  the step starts: without a store nothing can run, so an unset variable may fail the step;
- a channel's secrets are `dg.EnvVar`s too, by name (`secret_env`: setting -> variable), resolved with
  `EnvVar.get_value()` in that channel's `setup_for_execution`. Not by Dagster's config system: an EnvVar field
  whose variable is unset fails the initialization of every resource of the step (DagsterInvalidConfigError), so
  one channel without its secret would fail every check step and every dispatch tick. Resolved here, it fails
  that channel only: its problem is logged (the step's or tick's log), its deliveries are recorded as failed
  (`channel_unavailable`, counted in `floe_alert_delivery_failures`) and held in the outbox, and the registry's
  `alert_channels_ready` check fails naming the variable; the next step or tick reads the variable again.

A built channel is kept for the life of the process (`CHANNELS`) while its type, settings and secrets stay the same,
so its pooled HTTP client and circuit breaker last across sensor ticks and steps (a breaker that forgot its failures
every tick would never open); a changed channel replaces and closes the kept one, and all are closed at exit.
"""

import atexit
import logging
import threading
from collections.abc import Mapping
from typing import Any, cast

import dagster as dg
from pydantic import PrivateAttr, create_model
from pydantic_core import to_jsonable_python

from floe_monitoring_defs.alerting.channels.base import (
    AlertChannel,
    ChannelConfigError,
    ChannelProblem,
    build_channel,
    open_channels,
)
from floe_monitoring_defs.alerting.delivery import ChannelCache
from floe_monitoring_defs.config import AlertConfig, channel_key
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore, default_db_url

log = logging.getLogger("floe_monitoring")

# Channels kept across sensor ticks and check steps of this process (pooled clients, circuit breakers).
CHANNELS = ChannelCache()
atexit.register(CHANNELS.close)

ALERT_CHANNELS_KEY = "alert_channels"

# (channel, problem) pairs already logged by this process: a broken channel is logged once per process and problem
# (each run's log, the daemon's log when it breaks), not on every step of a run nor on every 5 s dispatch tick.
_LOGGED: set[tuple[str, str]] = set()
_LOGGED_LOCK = threading.Lock()  # sensors may be evaluated in threads


class IcebergCatalogResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """The pyiceberg catalogs the contracts name (their settings and credentials come from pyiceberg's own
    `PYICEBERG_CATALOG__*` variables, read when a catalog is first opened in the step); `default_catalog` is used
    for contracts whose server names none. Each step opens its catalogs once, for all its checks."""

    default_catalog: str | None = None

    _source: IcebergSource | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._source = IcebergSource(default_catalog=self.default_catalog)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._source = None

    def source(self) -> IcebergSource:
        if self._source is None:  # used outside a step (a resource built by hand)
            self._source = IcebergSource(default_catalog=self.default_catalog)
        return self._source


class MonitoringStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """The monitoring store. `db_url` may be an `EnvVar`; unset means FLOE_MONITORING_DB_URL or SQLite."""

    db_url: str | None = None

    _store: MonitoringStore | None = PrivateAttr(default=None)

    def store(self) -> MonitoringStore:
        if self._store is None:
            self._store = MonitoringStore(self.db_url or default_db_url())
        return self._store

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


class AlertChannelResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """One configured alert channel: its type, its settings (no secret) and the names of its secret variables.

    The channel is built once per step or sensor tick, with its secrets read from the environment of the process
    that delivers; a channel that cannot be built then (an unset variable) is unavailable for that step only.
    `disabled_reason`: set at load when the channel's own settings are wrong; its settings are then left out (a
    wrong setting may be a secret pasted where a variable's name belongs, and resource config shows in the UI)."""

    channel_name: str
    channel_type: str = ""
    settings: dict[str, Any] = {}
    secret_env: dict[str, str] = {}  # `<setting>_env` key of the config -> the environment variable's NAME
    disabled_reason: str = ""

    _channel: AlertChannel | None = PrivateAttr(default=None)
    _problem: str | None = PrivateAttr(default=None)
    _opened: bool = PrivateAttr(default=False)

    @classmethod
    def configured(cls, name: str, spec: Any, problem: ChannelProblem | None) -> "AlertChannelResource":
        """The resource of channel `name` from its config (`spec`) and the problem found at load, if any."""
        if problem is not None and problem.variable is None:  # wrong settings: nothing of them is kept
            return cls(channel_name=name, disabled_reason=problem.reason)
        items = dict(spec)
        return cls(
            channel_name=name,
            channel_type=str(items.pop("type")),
            # YAML may give dates and the like; resource config holds JSON values.
            settings=to_jsonable_python({k: v for k, v in items.items() if not str(k).endswith("_env")}),
            secret_env={str(k): str(v) for k, v in items.items() if str(k).endswith("_env")},
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._open(context.log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The channel itself stays in CHANNELS (its pooled client and breaker outlive the step).
        self._channel, self._problem, self._opened = None, None, False

    def channel(self) -> AlertChannel:
        """The channel built for this step; ChannelConfigError (naming the key or the variable) when it cannot be."""
        if not self._opened:  # used outside a step (a resource built by hand)
            self._open(None)
        if self._channel is None:
            raise ChannelConfigError(self._problem or f"alert channel {self.channel_name} is not available")
        return self._channel

    def problem(self) -> str | None:
        """Why the channel cannot deliver in this step; None when it can."""
        try:
            self.channel()
        except ChannelConfigError as exc:
            return str(exc)
        return None

    def _open(self, step_log: logging.Logger | None) -> None:
        self._opened = True
        self._channel, self._problem = None, None
        if self.disabled_reason:
            self._problem = self.disabled_reason
            held = "until the config is fixed and the code location reloaded"
        else:
            # Each secret as a dg.EnvVar resolved now, in this process (module docstring: why not Dagster's own).
            environ = {var: value for var in self.secret_env.values() if (value := dg.EnvVar(var).get_value())}
            spec = {"type": self.channel_type, **self.settings, **self.secret_env}
            try:
                self._channel = CHANNELS.reuse(build_channel(self.channel_name, spec, environ))
            except ChannelConfigError as exc:
                self._problem = str(exc)
                held = "and retried"
        with _LOGGED_LOCK:
            if self._problem is None:
                for seen in [s for s in _LOGGED if s[0] == self.channel_name]:
                    _LOGGED.discard(seen)  # it works again: a new problem is logged again
                return
            if (self.channel_name, self._problem) in _LOGGED:
                return
            _LOGGED.add((self.channel_name, self._problem))
        (step_log or log).warning(
            f"alert channel {self.channel_name} cannot deliver: {self._problem}; its alerts are held in the outbox "
            + held
        )


class AlertChannelsResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """Every configured alert channel, each a nested `AlertChannelResource` (one field per channel), built once per
    step or sensor tick. A channel that cannot be built is unavailable alone: its alerts are held and retried."""

    # The configured channel names (the fields below them are the channels themselves). Also keeps the model's
    # fields non-empty without channels: Dagster reads an empty model's fields through a deprecated pydantic API.
    channel_names: list[str] = []

    def channel_resources(self) -> list[AlertChannelResource]:
        fields = type(self).model_fields
        return [r for r in (getattr(self, f) for f in sorted(fields)) if isinstance(r, AlertChannelResource)]

    def ready(self) -> dict[str, AlertChannel]:
        """channel name -> the channel built for this step, for the channels that can deliver."""
        out: dict[str, AlertChannel] = {}
        for res in self.channel_resources():
            if res.problem() is None:
                out[res.channel_name] = res.channel()
        return out

    def unavailable(self) -> dict[str, str]:
        """channel name -> why it cannot deliver in this step (names the key or the variable, never a value)."""
        return {r.channel_name: p for r in self.channel_resources() if (p := r.problem()) is not None}


def resource_key(channel_name: str) -> str:
    return "alert_channel_" + channel_key(channel_name)


def alert_channels_resource(
    config: AlertConfig,
) -> tuple[AlertChannelsResource, dict[str, AlertChannelResource], dict[str, ChannelProblem]]:
    """The `alert_channels` resource of `config`, its channels by resource key, and the problem of each channel
    that cannot be built now. A bad channel never fails the load: it is disabled (wrong settings) or waits for its
    secret (unset variable). Judging them here reads the variables, but no value is kept: each step reads them
    again (`AlertChannelResource.setup_for_execution`)."""
    _, problems = open_channels(config.channels)
    channels = {
        resource_key(name): AlertChannelResource.configured(name, spec, problems.get(name))
        for name, spec in config.channels.items()
    }
    fields: Mapping[str, Any] = {key: (AlertChannelResource, ...) for key in channels}
    cls = create_model(
        "AlertChannelsResource", __base__=AlertChannelsResource, __doc__=AlertChannelsResource.__doc__, **fields
    )
    resource = cls(channel_names=sorted(config.channels), **channels)
    return cast(AlertChannelsResource, resource), channels, problems
