"""The table output: spec section 10's 80-column layout, character for character, then the extras."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from floe_monitoring_defs.sla import SLAComplianceReport, Totals
from floe_monitoring_defs.sla.build import ContractPeriod, build_report
from floe_monitoring_defs.sla.render import format_duration, format_report, format_spec_table

END = datetime(2026, 3, 31, 10, 20, tzinfo=UTC)
START = datetime(2026, 3, 24, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 31, tzinfo=UTC)

SPEC_TABLE = """\
================================================================================
SLA COMPLIANCE REPORT: orders_v1
================================================================================
Period: 2026-03-24T00:00:00+00:00 to 2026-03-31T10:20:00+00:00
Generated: 2026-03-31T10:20:00+00:00

Overall Compliance: 97.5%
Total Violations: 7
Total Checks Executed: 1000
Monitoring Coverage: 90.9%

CHECK TYPE SUMMARY
--------------------------------------------------------------------------------
Check Type              Total     Pass     Fail   Compliance        Trend
--------------------------------------------------------------------------------
freshness                 800      780       20        97.5%    improving
availability              200      195        5        97.5%       stable
================================================================================"""


def _report() -> SLAComplianceReport:
    bounds = [MIDNIGHT - timedelta(days=7 * (4 - i)) for i in range(5)]
    weeks = [{"freshness": Totals(total=100, passed=p)} for p in (80, 85, 90, 95)]
    return build_report(
        ContractPeriod(
            contract_name="orders_v1",
            window="weekly",
            period_start=START,
            period_end=END,
            generated_at=END,
            totals={
                "freshness": Totals(
                    total=800, passed=780, failed=20, violations={"error": 5, "critical": 1}
                ).with_expected(800),
                "availability": Totals(
                    total=200, passed=195, failed=5, ping_n=200, ping_ok=199, violations={"warning": 1}
                ).with_expected(300),
            },
            weeks=[(bounds[i], bounds[i + 1], weeks[i]) for i in range(4)],
            targets={"availability": 99.9},
            resolutions={"availability": [3725.0]},
        )
    )


def test_spec_table_is_exact() -> None:
    rep = _report()
    assert "\n".join(format_spec_table(rep)) == SPEC_TABLE


def test_extras_follow_within_80_columns() -> None:
    text = format_report(_report())
    assert text.startswith(SPEC_TABLE + "\n")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "Uptime (availability): 99.50%" in lines
    assert any(line.startswith("availability") and "99.90%" in line and "5.00 !" in line for line in lines)
    assert any(line.split() == ["all", "0", "1", "5", "1", "7"] for line in lines)
    assert "MTTR (incident opened -> resolved):   1h 02m (1 incidents)" in lines
    assert "2026-03-24..2026-03-30        100       95.0%           0         -         -" in lines
    assert lines[-1] == "=" * 80


def test_unknown_coverage_and_durations() -> None:
    rep = _report().model_copy(update={"monitoring_coverage_pct": None})
    assert "Monitoring Coverage: -" in format_spec_table(rep)
    assert [format_duration(s) for s in (None, 45, 750, 3725, 200000)] == ["-", "45s", "12m 30s", "1h 02m", "2d 7h"]
