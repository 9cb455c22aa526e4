"""Per-contract `floe.monitoring` overrides: the alert syntax, its checks, both dialects' spellings, provenance."""

from __future__ import annotations

from typing import Any

import pytest

from floe_monitoring_defs.config import ConfigError, MonitoringConfig, effective_settings, parse_config
from floe_monitoring_defs.contracts.errors import ContractLoadError
from floe_monitoring_defs.contracts.loader import parse_document
from floe_monitoring_defs.models import ViolationSeverity

GLOBAL = parse_config(
    {
        "alerts": {
            "channels": {"hook": {"type": "webhook"}, "pager": {"type": "webhook"}, "chat": {"type": "webhook"}},
            "routing_rules": [
                {"channel_name": "hook", "min_severity": "warning"},
                {"channel_name": "chat", "min_severity": "error", "contract_filter": "sales_*"},
            ],
        },
        "check_intervals": {"freshness_minutes": 10},
    },
    "monitoring.yaml",
)


def rules(cfg: MonitoringConfig) -> list[tuple[str, str]]:
    return [(r.channel_name, r.min_severity.value) for r in cfg.alerts.routing_rules]


def test_rules_extend_by_default_replace_on_request_and_exclusions_drop_channels() -> None:
    own = [{"channel_name": "pager", "min_severity": "critical"}]
    extended = GLOBAL.merged({"alerts": {"routing_rules": own}})
    assert rules(extended) == [("hook", "warning"), ("chat", "error"), ("pager", "critical")]
    replaced = GLOBAL.merged({"alerts": {"routing": "replace", "routing_rules": own}})
    assert rules(replaced) == [("pager", "critical")]
    excluded = GLOBAL.merged({"alerts": {"exclude_channels": ["hook"]}})
    assert rules(excluded) == [("chat", "error")]
    assert rules(GLOBAL) == [("hook", "warning"), ("chat", "error")]  # the global config is left alone


def test_windows_are_overridden_and_travel_as_entry_settings() -> None:
    cfg = GLOBAL.merged({"alerts": {"dedup_window_minutes": 5, "renotify_minutes": 60, "rate_limit_per_contract": 2}})
    s = cfg.alerts.entry_settings()
    assert (s.dedup_window_minutes, s.renotify_minutes, s.rate_limit_per_contract, s.rate_limit_window_minutes) == (
        5,
        60,
        2,
        60,
    )
    assert s.routing_rules[0].min_severity is ViolationSeverity.WARNING
    assert GLOBAL.alerts.channels == cfg.alerts.channels


@pytest.mark.parametrize(
    ("alerts", "key", "words"),
    [
        (
            {"routing_rules": [{"channel_name": "nope", "min_severity": "error"}]},
            "alerts.routing_rules[0].channel_name",
            "'nope' is not a channel defined under alerts.channels",
        ),
        ({"exclude_channels": ["nope"]}, "alerts.exclude_channels[0]", "'nope' is not a channel"),
        ({"channels": {"mine": {"type": "webhook"}}}, "alerts.channels", "a contract never defines a channel"),
        ({"dagster_url": "http://x"}, "alerts.dagster_url", "a setting of the deployment"),
        ({"routing": "merge"}, "alerts.routing", "must be extend or replace"),
        (
            {"routing_rules": [{"channel_name": "hook", "min_severity": "error", "contract_filter": "*"}]},
            "alerts.routing_rules[0].contract_filter",
            "that contract only",
        ),
        ({"dedup_window_minutes": 0}, "alerts.dedup_window_minutes", "greater than or equal to 1"),
    ],
)
def test_wrong_alert_overrides_are_named_by_key(alerts: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        GLOBAL.merged({"alerts": alerts}, "payments.yaml: customProperties.floe.monitoring")
    assert f"payments.yaml: customProperties.floe.monitoring: {key}: " in str(err.value) and words in str(err.value)


def test_a_contract_checked_alone_may_name_channels_the_deployment_defines() -> None:
    """`floe contracts validate` has no deployment config: a rule's channel is checked when definitions load."""
    own = {"alerts": {"routing": "replace", "routing_rules": [{"channel_name": "pager", "min_severity": "error"}]}}
    assert rules(MonitoringConfig().merged(own, channels_known=False)) == [("pager", "error")]
    with pytest.raises(ConfigError):
        MonitoringConfig().merged(own)


ODCS = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "p",
    "name": "payments",
    "version": "1.0.0",
    "status": "active",
    "servers": [
        {"server": "s", "type": "iceberg", "catalog": "c", "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
    ],
    "schema": [{"name": "payments", "properties": [{"name": "id", "logicalType": "string"}]}],
}
OVERRIDES = {"check_intervals": {"freshness_minutes": 5}, "alerts": {"routing": "replace", "routing_rules": []}}


def test_the_floe_dialect_spells_overrides_as_a_mapping_or_as_flat_dotted_keys() -> None:
    odcs = parse_document({**ODCS, "customProperties": [{"property": "floe.monitoring", "value": OVERRIDES}]}, "a")
    dialect_map = parse_document({**ODCS, "customProperties": {"floe.monitoring": OVERRIDES}}, "b")
    flat = {
        "floe.monitoring.check_intervals.freshness_minutes": 5,
        "floe.monitoring.alerts.routing": "replace",
        "floe.monitoring.alerts.routing_rules": [],
    }
    dialect_flat = parse_document({**ODCS, "customProperties": flat}, "c")
    assert dialect_map.dialect == "floe" and odcs.dialect == "odcs"
    assert (
        odcs.monitoring_overrides == dialect_map.monitoring_overrides == dialect_flat.monitoring_overrides == OVERRIDES
    )


def test_a_setting_given_in_both_spellings_is_refused() -> None:
    custom = {"floe.monitoring": OVERRIDES, "floe.monitoring.check_intervals.freshness_minutes": 7}
    with pytest.raises(ContractLoadError) as err:
        parse_document({**ODCS, "customProperties": custom}, "c.yaml")
    assert err.value.error.field == "customProperties.floe.monitoring.check_intervals.freshness_minutes"


def test_effective_settings_name_where_each_value_came_from() -> None:
    cfg = GLOBAL.merged({"check_intervals": {"freshness_minutes": 5, "quality_minutes": 30}})
    got = {
        s.key: s
        for s in effective_settings(
            GLOBAL, cfg, "p.yaml", "monitoring.yaml", {"check_intervals": {"freshness_minutes": 10}}
        )
    }
    assert set(got) == {"check_intervals.freshness_minutes", "check_intervals.quality_minutes"}
    fresh, quality = got["check_intervals.freshness_minutes"], got["check_intervals.quality_minutes"]
    assert (fresh.value, fresh.global_value, fresh.global_source) == (5, 10, "config monitoring.yaml")
    assert (quality.value, quality.global_value, quality.global_source) == (30, 360, "default")
    assert fresh.source == "contract p.yaml: customProperties.floe.monitoring"
    assert effective_settings(GLOBAL, GLOBAL, "p.yaml") == []
