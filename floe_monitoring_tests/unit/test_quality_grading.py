"""Quality grading (pure): weighted score, one finding per failed rule, score severity, skip/error."""

import pytest

from floe_monitoring_defs.checks.quality import evaluate_quality, score_severity, skipped_outcome
from floe_monitoring_defs.config import MonitoringConfig, SeverityThresholds
from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredTable, QualityRule, TableRef
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.quality import RuleResult, rule_severity, rule_weight

S = ViolationSeverity
TABLE = MonitoredTable(
    "customers", TableRef(("crm",), "customers"), (ExpectedColumn("email", "email", "string", classification="pii"),)
)
TH = SeverityThresholds()


def rr(
    name: str,
    passed: bool | None,
    severity: S = S.ERROR,
    weight: float = 2.0,
    *,
    error: str | None = None,
    element: str | None = "email",
) -> RuleResult:
    return RuleResult(
        name=name,
        passed=passed,
        metric="nullValues",
        expected="= 0 rows",
        actual="0 rows" if passed else "3 rows",
        weight=weight,
        severity=severity,
        element=element,
        rows_checked=100,
        error=error,
        value=0.0 if passed else 3.0,
    )


def test_weighted_score_and_one_finding_per_failed_rule() -> None:
    results = [
        rr("a", True, S.CRITICAL, 3.0),
        rr("b", False, S.WARNING, 1.0),
        rr("c", False, S.INFO, 0.5),
        rr("d", True, S.ERROR, 2.0),
        rr("e", None, error="quality rule e: boom"),
    ]
    out = evaluate_quality(TABLE, results, 0.8, TH, engine="duckdb", columns_read=["email"])
    assert out.measured_value == pytest.approx(5.0 / 6.5)  # errored rule e counts neither way
    assert out.threshold == 0.8
    kinds = [(f.kind, f.severity) for f in out.findings]
    assert kinds == [("rule_failed", S.WARNING), ("rule_failed", S.INFO), ("score_below_threshold", S.WARNING)]
    assert out.status is CheckStatus.FAIL
    assert out.details["rules_errored"] == 1 and out.details["rules_failed"] == 2
    assert out.details["columns_read"] == ["email"] and out.details["engine"] == "duckdb"
    assert [r["status"] for r in out.details["rules"]] == ["pass", "fail", "fail", "pass", "error"]
    f = out.findings[0]
    assert (f.element, f.expected, f.actual) == ("email", "= 0 rows", "3 rows")
    assert "b" in f.message and "email" in f.message and "= 0 rows" in f.message and "3 rows" in f.message


def test_only_info_failures_above_threshold_pass_with_the_finding() -> None:
    out = evaluate_quality(TABLE, [rr("a", True, S.ERROR, 9.0), rr("b", False, S.INFO, 1.0)], 0.8, TH)
    assert out.status is CheckStatus.PASS
    assert [f.severity for f in out.findings] == [S.INFO]
    assert out.measured_value == pytest.approx(0.9)


def test_all_pass() -> None:
    out = evaluate_quality(TABLE, [rr("a", True), rr("b", True)], 0.8, TH)
    assert (out.status, out.findings, out.measured_value) == (CheckStatus.PASS, (), 1.0)


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.8, None),
        (0.75, S.WARNING),
        (0.72, S.WARNING),
        (0.71, S.ERROR),
        (0.4, S.ERROR),
        (0.39, S.CRITICAL),
    ],
)
def test_score_severity_bands(score: float, severity: S | None) -> None:
    assert score_severity(score, 0.8, TH) is severity


def test_all_rules_errored_is_error_not_violation() -> None:
    out = evaluate_quality(
        TABLE, [rr("a", None, error="quality rule a: x"), rr("b", None, error="quality rule b: y")], 0.8, TH
    )
    assert out.status is CheckStatus.ERROR and out.findings == ()
    assert out.reason is not None and "quality rule a: x" in out.reason and "1 more" in out.reason


def test_no_rules_or_only_text_rules_skip() -> None:
    assert evaluate_quality(TABLE, [], 0.8, TH).status is CheckStatus.SKIPPED
    text = RuleResult(
        name="t",
        passed=None,
        metric="text",
        expected="",
        actual="",
        weight=2.0,
        severity=S.ERROR,
        note="not executable",
    )
    out = evaluate_quality(TABLE, [text], 0.8, TH)
    assert out.status is CheckStatus.SKIPPED and out.details["rules"][0]["status"] == "skipped"


def test_skipped_outcome() -> None:
    out = skipped_outcome("quality engine 'x' is unavailable: missing")
    assert (out.check_type, out.status, out.findings) == (ViolationType.QUALITY, CheckStatus.SKIPPED, ())
    assert out.reason == "quality engine 'x' is unavailable: missing"


@pytest.mark.parametrize(
    ("severity", "weight", "expected_sev", "expected_weight"),
    [
        (None, None, S.ERROR, 2.0),
        ("critical", None, S.CRITICAL, 3.0),
        ("Warning", None, S.WARNING, 1.0),
        ("info", None, S.INFO, 0.5),
        ("error", 7.0, S.ERROR, 7.0),
        ("bogus", None, S.ERROR, 2.0),
    ],
)
def test_rule_severity_and_weight(
    severity: str | None, weight: float | None, expected_sev: S, expected_weight: float
) -> None:
    rule = QualityRule(name="r", type="library", table="t", severity=severity, weight=weight)
    assert rule_severity(rule) is expected_sev
    assert rule_weight(rule) == expected_weight


def test_config_quality_fields() -> None:
    c = MonitoringConfig()
    assert (c.quality_threshold, c.quality_engine) == (0.8, "duckdb")
    assert c.merged({"quality_threshold": 0.95}).quality_threshold == 0.95
    with pytest.raises(ValueError, match="quality_threshold"):
        c.merged({"quality_threshold": 1.5})


def test_score_finding_never_exceeds_the_worst_failed_rule() -> None:
    """One failed ERROR rule (score 0) is an ERROR, not a CRITICAL, unless the config lifts the cap."""
    out = evaluate_quality(TABLE, [rr("a", False, S.ERROR, 2.0)], 0.8, TH)
    assert out.measured_value == 0.0
    assert [(f.kind, f.severity) for f in out.findings] == [
        ("rule_failed", S.ERROR),
        ("score_below_threshold", S.ERROR),
    ]
    assert out.details["score_severity_capped"] == "critical -> error"
    uncapped = evaluate_quality(TABLE, [rr("a", False, S.ERROR, 2.0)], 0.8, TH, severity_cap=False)
    assert [f.severity for f in uncapped.findings] == [S.ERROR, S.CRITICAL]
    assert "score_severity_capped" not in uncapped.details


def test_capped_score_of_warning_and_info_rules() -> None:
    # score 0.5 / 2.0 = 0.25 would be CRITICAL; the worst failed rule is a WARNING
    results = [rr("a", False, S.WARNING, 1.0), rr("b", False, S.INFO, 0.5), rr("c", True, S.INFO, 0.5)]
    out = evaluate_quality(TABLE, results, 0.8, TH)
    assert [(f.kind, f.severity) for f in out.findings][-1] == ("score_below_threshold", S.WARNING)
    assert out.status is CheckStatus.FAIL
    # only INFO rules failed: the score finding is INFO too, and the check passes with the notes
    only_info = evaluate_quality(TABLE, [rr("b", False, S.INFO, 0.5), rr("c", True, S.INFO, 0.1)], 0.8, TH)
    assert [f.severity for f in only_info.findings] == [S.INFO, S.INFO]
    assert only_info.status is CheckStatus.PASS


def test_no_executable_rule_is_skipped_with_the_reason() -> None:
    notes = [
        RuleResult("prose", None, "text", "", "", 2.0, S.ERROR, note="`type: text` rules are prose"),
        RuleResult("custom_gx", None, "custom", "", "", 2.0, S.ERROR, note="written for their own engine"),
    ]
    out = evaluate_quality(TABLE, notes, 0.8, TH)
    assert (out.status, out.findings) == (CheckStatus.SKIPPED, ())
    assert out.reason == "no quality rule could run: prose: `type: text` rules are prose (and 1 more not executable)"
    assert [r["status"] for r in out.details["rules"]] == ["skipped", "skipped"]
    assert out.details["rules"][1]["note"] == "written for their own engine"


def test_config_constraint_and_cap_keys() -> None:
    c = MonitoringConfig()
    assert (c.quality_score_severity_cap, c.column_constraints.enabled, c.column_constraints.severity) == (
        True,
        True,
        S.ERROR,
    )
    merged = c.merged({"column_constraints": {"severity": "warning"}, "quality_score_severity_cap": False})
    assert (merged.column_constraints.severity, merged.quality_score_severity_cap) == (S.WARNING, False)
    with pytest.raises(ValueError, match=r"column_constraints\.severity"):
        c.merged({"column_constraints": {"severity": "fatal"}})
