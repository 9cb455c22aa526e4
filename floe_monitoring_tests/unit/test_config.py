"""MonitoringConfig: spec defaults, YAML loading, errors naming the key, per-contract merge."""

from pathlib import Path

import pytest
import yaml

from floe_monitoring_defs.config import ConfigError, MonitoringConfig, Settings, load_config, parse_config
from floe_monitoring_defs.models import ViolationSeverity


def test_defaults_are_the_spec_defaults() -> None:
    c = MonitoringConfig()
    assert (
        c.check_intervals.freshness_minutes,
        c.check_intervals.schema_drift_minutes,
        c.check_intervals.quality_minutes,
        c.check_intervals.availability_minutes,
    ) == (15, 60, 360, 5)
    t = c.severity_thresholds
    assert (t.info_pct, t.warning_pct, t.critical_count, t.critical_window_hours) == (80.0, 90.0, 3, 24)
    assert (c.retention_days, c.clock_skew_tolerance_seconds, c.check_timeout_seconds) == (90, 60, 30)
    assert (c.alerts.dedup_window_minutes, c.alerts.rate_limit_per_contract, c.alerts.rate_limit_window_minutes) == (
        30,
        10,
        60,
    )
    assert c.mode == "scheduled" and c.enabled


def test_yaml_from_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "monitoring.yaml"
    p.write_text(
        "check_intervals: {freshness_minutes: 5}\nalerts:\n  routing_rules:\n"
        "    - {channel_name: slack, min_severity: warning, contract_filter: 'orders*'}\n"
    )
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(p))
    c = load_config()
    assert c.check_intervals.freshness_minutes == 5
    assert c.check_intervals.schema_drift_minutes == 60
    assert c.alerts.routing_rules[0].min_severity is ViolationSeverity.WARNING


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("check_intervals: {freshness_minutes: 0}", "check_intervals.freshness_minutes"),
        ("severity_thresholds: {warning_pct: 140}", "severity_thresholds.warning_pct"),
        ("mode: sometimes", "mode"),
        ("retention_dayz: 10", "retention_dayz"),
        ("alerts: {routing_rules: [{channel_name: x, min_severity: loud}]}", "alerts.routing_rules.0.min_severity"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert f"{p}: {key}:" in str(exc.value)


def test_unreadable_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(p)


def test_per_contract_overrides_merge_over_global() -> None:
    base = MonitoringConfig.model_validate({"check_intervals": {"schema_drift_minutes": 120}})
    merged = base.merged({"check_intervals": {"freshness_minutes": 5}}, "c.yaml")
    assert merged.check_intervals.freshness_minutes == 5
    assert merged.check_intervals.schema_drift_minutes == 120  # merged, not replaced
    with pytest.raises(ConfigError, match=r"c\.yaml: clock_skew_tolerance_seconds"):
        base.merged({"clock_skew_tolerance_seconds": -1}, "c.yaml")


def test_settings_from_env() -> None:
    s = Settings.from_env({"FLOE_CONTRACTS_DIR": "/c", "FLOE_CATALOG": "prod"})
    assert s.contracts_dir == Path("/c") and s.default_catalog == "prod" and s.db_url is None
    assert Settings.from_env({}).contracts_dir == Path("contracts")


@pytest.mark.parametrize(
    ("metric", "key"),
    [
        ({"name": "floe_contract_quality_score", "source": {"quality_rule": "r"}}, "custom_metrics[0].name"),
        ({"name": "bad name", "source": {"quality_rule": "r"}}, "custom_metrics.0.name"),
        ({"name": "m", "source": {"evidence": "age_seconds"}}, "custom_metrics.0.source"),
        (
            {"name": "m", "source": {"check_type": "freshness", "evidence": "x", "quality_rule": "r"}},
            "custom_metrics.0.source",
        ),
        ({"name": "m", "labels": ["email"], "source": {"quality_rule": "r"}}, "custom_metrics.0.labels.0"),
    ],
)
def test_bad_custom_metric_is_a_config_error_naming_the_key(tmp_path: Path, metric: dict, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"custom_metrics": [metric]}))
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert key in str(exc.value)


def test_duplicate_custom_metric() -> None:
    m = {"name": "rows", "source": {"check_type": "quality", "evidence": "rows_checked"}}
    with pytest.raises(ConfigError, match=r"custom_metrics\[1\].name: 'rows' is defined twice"):
        parse_config({"custom_metrics": [m, m]}, "x.yaml")
