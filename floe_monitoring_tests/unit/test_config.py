"""MonitoringConfig: spec defaults, YAML loading, errors naming the file and the dotted key (never a value that
may be a secret, never a pydantic URL), the bounded reader, per-contract merge."""

import os
from pathlib import Path

import pytest
import yaml

from floe_monitoring_defs.config import (
    MAX_CONFIG_BYTES,
    ConfigError,
    ConfigProblem,
    MonitoringConfig,
    Settings,
    env_var_name_problem,
    load_config,
    parse_config,
)
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
        "check_intervals: {freshness_minutes: 5}\nalerts:\n  channels: {slack: {type: slack, webhook_url_env: X}}\n"
        "  routing_rules:\n    - {channel_name: slack, min_severity: warning, contract_filter: 'orders*'}\n"
    )
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(p))
    c = load_config()
    assert c.check_intervals.freshness_minutes == 5
    assert c.check_intervals.schema_drift_minutes == 60
    assert c.alerts.routing_rules[0].min_severity is ViolationSeverity.WARNING


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "check_intervals: {freshness_minutes: 0}",
            "check_intervals.freshness_minutes: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            "severity_thresholds: {warning_pct: 140}",
            "severity_thresholds.warning_pct: Input should be less than or equal to 100 (got 140)",
        ),
        ("mode: sometimes", "mode: Input should be 'scheduled', 'continuous' or 'on_demand' (got 'sometimes')"),
        ("retention_dayz: 10", "retention_dayz: Extra inputs are not permitted"),
        (
            "alerts: {channels: {x: {type: slack}}, routing_rules: [{channel_name: x, min_severity: loud}]}",
            "alerts.routing_rules[0].min_severity: Input should be 'info', 'warning', 'error' or 'critical'"
            " (got 'loud')",
        ),
        (
            "check_intervals: {volume_minutes: 0}",
            "check_intervals.volume_minutes: must be a whole number of minutes, at least 1 (got 0)",
        ),
        ("check_intervals: {every: 3}", "check_intervals.every: not a check interval (keys are <check kind>_minutes)"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}: {expected}"


def test_unreadable_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "missing.yaml")
    assert (
        str(exc.value) == f"{tmp_path / 'missing.yaml'}: cannot read the monitoring config: No such file or directory"
    )
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}: <root>: the monitoring config must be a mapping, got list"


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
        ({"name": "bad name", "source": {"quality_rule": "r"}}, "custom_metrics[0].name"),
        ({"name": "m", "source": {"evidence": "age_seconds"}}, "custom_metrics[0].source"),
        (
            {"name": "m", "source": {"check_type": "freshness", "evidence": "x", "quality_rule": "r"}},
            "custom_metrics[0].source",
        ),
        ({"name": "m", "labels": ["email"], "source": {"quality_rule": "r"}}, "custom_metrics[0].labels[0]"),
    ],
)
def test_bad_custom_metric_is_a_config_error_naming_the_key(tmp_path: Path, metric: dict, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"custom_metrics": [metric]}))
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value).startswith(f"{p}: {key}: ")
    assert "Value error" not in str(exc.value)


def test_duplicate_custom_metric() -> None:
    m = {"name": "rows", "source": {"check_type": "quality", "evidence": "rows_checked"}}
    with pytest.raises(ConfigError) as exc:
        parse_config({"custom_metrics": [m, m]}, "x.yaml")
    assert str(exc.value) == "x.yaml: custom_metrics[1].name: 'rows' is defined twice"


# --- cross-references -----------------------------------------------------------------------------------


def test_a_routing_rule_to_an_undefined_channel_is_an_error_naming_the_rule() -> None:
    data = {
        "alerts": {
            "channels": {"ops-webhook": {"type": "webhook", "url": "https://hooks.example.com/x"}, "team": {}},
            "routing_rules": [
                {"channel_name": "ops-webhook", "min_severity": "warning"},
                {"channel_name": "pager", "min_severity": "critical"},
                {"channel_name": "team", "min_severity": "error"},
                {"channel_name": "Team", "min_severity": "error"},
            ],
        }
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "m.yaml")
    undefined = (
        "is not a channel defined under alerts.channels (defined: ops-webhook, team); its alerts would go nowhere"
    )
    assert str(exc.value).splitlines() == [
        f"m.yaml: alerts.routing_rules[1].channel_name: 'pager' {undefined}",
        f"m.yaml: alerts.routing_rules[3].channel_name: 'Team' {undefined}",
    ]
    assert [(p.source, p.key) for p in exc.value.problems] == [
        ("m.yaml", "alerts.routing_rules[1].channel_name"),
        ("m.yaml", "alerts.routing_rules[3].channel_name"),
    ]


def test_rules_without_any_channel_are_an_error_too() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"alerts": {"routing_rules": [{"channel_name": "slack", "min_severity": "info"}]}}, "m.yaml")
    assert str(exc.value) == (
        "m.yaml: alerts.routing_rules[0].channel_name: 'slack' is not a channel defined under alerts.channels "
        "(defined: none); its alerts would go nowhere"
    )


def test_channel_names_that_would_share_a_resource_key() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"alerts": {"channels": {"ops-hook": {}, "ops_hook": {}}}}, "m.yaml")
    assert str(exc.value) == (
        "m.yaml: alerts.channels.ops_hook: too close to the name 'ops-hook' (the two would share one resource)"
    )


def test_a_per_contract_override_names_the_contract_and_key() -> None:
    base = parse_config({"alerts": {"channels": {"hook": {"type": "webhook"}}}}, "m.yaml")
    with pytest.raises(ConfigError) as exc:
        base.merged({"alerts": {"routing_rules": [{"channel_name": "nope", "min_severity": "error"}]}}, "c.yaml")
    assert [(p.source, p.key) for p in exc.value.problems] == [("c.yaml", "alerts.routing_rules[0].channel_name")]


# --- what an error may show ---------------------------------------------------------------------------------

SECRET = "xoxb-T0SECRET-B0SECRET-tokenvalue42"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"slack_webhook_url": f"https://hooks.slack.com/services/{SECRET}"}, "slack_webhook_url: Extra inputs"),
        ({"alerts": {"slack_token": SECRET}}, "alerts.slack_token: Extra inputs are not permitted"),
        ({"alerts": {"dagster_url": 12345}}, "alerts.dagster_url: Input should be a valid string"),
        ({"alerts": {"channels": SECRET}}, "alerts.channels: Input should be a valid dictionary"),
        ({"quality_engine": ["x", SECRET]}, "quality_engine: Input should be a valid string"),
    ],
)
def test_an_error_never_quotes_a_value_that_may_be_a_secret(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "m.yaml")
    text = str(exc.value)
    assert text.startswith(f"m.yaml: {expected}")
    assert SECRET not in text and "12345" not in text and "(got" not in text


def test_pydantic_urls_and_prefixes_never_reach_the_message() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"retention_days": "many", "alerts": {"dedup_window_minutes": 0}}, "m.yaml")
    assert str(exc.value).splitlines() == [
        "m.yaml: alerts.dedup_window_minutes: Input should be greater than or equal to 1 (got 0)",
        "m.yaml: retention_days: Input should be a valid integer, unable to parse string as an integer (got 'many')",
    ]
    assert exc.value.problems[0] == ConfigProblem(
        "m.yaml", "alerts.dedup_window_minutes", "Input should be greater than or equal to 1 (got 0)"
    )


@pytest.mark.parametrize("name", ["FLOE_SLACK_WEBHOOK_URL", "PD_KEY", "floe_smtp_password", "_X", "A1", "KEY_2024"])
def test_plausible_environment_variable_names(name: str) -> None:
    assert env_var_name_problem(name) is None


@pytest.mark.parametrize(
    "value",
    [
        "https://hooks.slack.com/services/T00/B00/abc",  # the secret URL itself
        "xoxb-1234-5678-abcdef",  # a Slack token
        "e93facc04764012d7bfb002500d5d1a6",  # a PagerDuty routing key (32 hex)
        "sk_live_51H8abcdefGHIJKLMNOPqrst",  # a key with underscores and a long token part
        "c2VjcmV0LXZhbHVl==",  # base64
        "my var",
        "X" * 129,
    ],
)
def test_a_value_that_is_no_variable_name_is_refused_without_echoing_it(value: str) -> None:
    problem = env_var_name_problem(value)
    assert problem == (
        "not the name of an environment variable; give the NAME of an environment variable that holds the secret, "
        "never the secret itself (the value is not shown)"
    )


@pytest.mark.parametrize("value", ["", None, 42, ["A"]])
def test_a_missing_or_non_text_variable_name(value: object) -> None:
    assert env_var_name_problem(value) == (
        "must name an environment variable (give the NAME of an environment variable that holds the secret, "
        "never the secret itself)"
    )


# --- the bounded reader -------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "monitoring.yaml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return str(exc.value)


def test_a_yaml_syntax_error_gives_line_and_column_without_the_line_itself(tmp_path: Path) -> None:
    p = write(tmp_path, f"alerts:\n  channels: [\n  hook: {SECRET}\n")
    assert error_of(p) == f"{p}: line 4, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'"


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    p = write(tmp_path, "alerts:\n  dedup_window_minutes: 5\n  channels: {}\n  dedup_window_minutes: 6\n")
    assert error_of(p) == f"{p}: alerts.dedup_window_minutes: line 4: duplicate key (first at line 2)"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefg"[i]
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    p = write(tmp_path, "\n".join(levels) + "\n")
    assert error_of(p) == f"{p}: e: line 5: more than 100000 values once aliases are expanded"


def test_an_alias_to_its_own_container(tmp_path: Path) -> None:
    p = write(tmp_path, "alerts: &a {channels: *a}\n")
    assert error_of(p) == f"{p}: alerts.channels: line 1: an alias refers to the value that contains it"


def test_a_huge_number_is_refused_naming_its_key(tmp_path: Path) -> None:
    p = write(tmp_path, "retention_days: " + "9" * 5000 + "\n")
    assert error_of(p) == f"{p}: retention_days: line 1: a number of more than 100 digits"


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, "a: " + "[" * 80 + "]" * 80 + "\n")
    assert error_of(p).endswith(": line 1: nested more than 64 levels deep")
    p = write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")  # deeper than the YAML parser itself can go
    assert error_of(p) == f"{p}: nested too deeply to be a monitoring config"


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    p = write(tmp_path, b"retention_days: 30\nmode: \xff\xfe\n")
    assert error_of(p) == f"{p}: line 2: not UTF-8 text (byte 25)"


def test_a_file_over_the_size_limit(tmp_path: Path) -> None:
    p = write(tmp_path, "# " + "x" * MAX_CONFIG_BYTES + "\n")
    assert error_of(p) == f"{p}: larger than 1024 KiB; not a monitoring config"


def test_devices_fifos_and_directories_are_not_read(tmp_path: Path) -> None:
    device = tmp_path / "zero.yaml"
    device.symlink_to("/dev/zero")
    assert error_of(device) == f"{device}: not a regular file; FLOE_MONITORING_CONFIG must name a YAML file"
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it must not wait for a writer
    assert error_of(fifo) == f"{fifo}: not a regular file; FLOE_MONITORING_CONFIG must name a YAML file"
    assert error_of(tmp_path) == f"{tmp_path}: cannot read the monitoring config: Is a directory"
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert error_of(loop) == f"{loop}: cannot read the monitoring config: Too many levels of symbolic links"


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing set\n")) == MonitoringConfig()
