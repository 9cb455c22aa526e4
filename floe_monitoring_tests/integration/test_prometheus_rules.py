"""Watching the watcher (issue 13, scope 5): the rules and dashboard in helm-values/ against a real Prometheus.

- `promtool check rules` accepts helm-values/prometheus-rules.yaml and refuses a broken copy;
- `promtool test rules` runs the unit tests in fixtures/prometheus/rules.test.yaml with the rules' real `for:`;
- live: the machine's Prometheus (Debian `prometheus`) on 127.0.0.1 scrapes `floe metrics serve` and a real check
  run (`floe checks run` on the demo warehouse, OTEL_EXPORTER_PROMETHEUS_PORT) with the rules loaded (their
  `for:` set to 0s: the expressions are what is tested live, the durations are tested by promtool). Every rule
  loads without error, every metric name the rules and the dashboard use returns a series (`promtool query
  instant`), and staged faults fire the matching alert and no other: a channel whose receiver refuses
  connections, a check kind whose last completed check is moved a day back in the store, the exporter stopped.

Nothing waits on the wall clock for a verdict: each wait polls Prometheus for a state and fails after a
generous deadline (only reached when the state never comes).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from floe_monitoring_defs.demo import build_warehouse
from floe_monitoring_defs.models import utcnow
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm-values" / "prometheus-rules.yaml"
DASHBOARD = ROOT / "helm-values" / "grafana-dashboard.json"
RULE_TESTS = ROOT / "floe_monitoring_tests" / "fixtures" / "prometheus" / "rules.test.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
METRIC = re.compile(r"\b(floe_[a-z0-9_]+)\b")

needs_prometheus = pytest.mark.skipif(
    not (Path(PROMTOOL).exists() and Path(PROMETHEUS).exists()) and not os.environ.get("CI"),
    reason="Prometheus not installed (.ci/run installs the Debian package `prometheus`)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text("utf-8"))
    return [str(rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text("utf-8"))
    return [str(target["expr"]) for panel in doc["panels"] for target in panel["targets"]]


def _names(exprs: list[str]) -> set[str]:
    return {m for e in exprs for m in METRIC.findall(e)}


def test_dashboard_is_grafana_json_with_a_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text("utf-8"))
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    [var] = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and ids
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${" + var["name"] + "}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(_names([t["expr"]]) for t in panel["targets"]), panel["title"]


@needs_prometheus
def test_promtool_accepts_the_rules_and_refuses_a_broken_copy(tmp_path: Path) -> None:
    ok = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rules = len(_rule_exprs())
    assert f"SUCCESS: {rules} rules found" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        RULES.read_text("utf-8").replace("max(floe_monitor_store_up) == 0", "max(floe_monitor_store_up == 0")
    )
    bad = subprocess.run([PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert "FloeStoreDown" in bad.stdout + bad.stderr


@needs_prometheus
def test_promtool_unit_tests_with_the_real_for_durations() -> None:
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120, cwd=RULE_TESTS.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every alert of the rule file has at least one unit test
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text("utf-8")))
    defined = {r["alert"] for g in yaml.safe_load(RULES.read_text("utf-8"))["groups"] for r in g["rules"]}
    assert defined == tested


# -- live --------------------------------------------------------------------------------------------------


def _wait(what: str, probe: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


class Prom:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10.0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through `promtool query instant` (what an operator would type)."""
        out = subprocess.run(
            [PROMTOOL, "query", "instant", "-o", "json", self.url, expr], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        result: list[dict[str, Any]] = json.loads(out.stdout)
        return result

    def firing(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.http.get("/api/v1/alerts").json()["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    def groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.http.get("/api/v1/rules").json()["data"]["groups"]
        return groups

    def rules(self) -> list[dict[str, Any]]:
        return [r for g in self.groups() for r in g["rules"]]

    def evaluated_after(self, at: datetime) -> bool:
        """Every rule group has been evaluated since `at` (so alert states reflect data scraped by then)."""
        groups = self.groups()
        return bool(groups) and all(_rfc3339(g["lastEvaluation"]) > at for g in groups)


def _rfc3339(value: str) -> datetime:
    """Prometheus' RFC 3339 time (nanoseconds, `Z`) as an aware datetime."""
    head, _, frac = value.rstrip("Z").partition(".")
    micros = (frac + "000000")[:6] if frac else "000000"
    return datetime.fromisoformat(f"{head}.{micros}+00:00")


def _firing(prom: Prom, alertname: str) -> list[dict[str, str]]:
    return [a["labels"] for a in prom.firing() if a["labels"]["alertname"] == alertname]


def _spawn(args: list[str], env: dict[str, str], log: Path, **kw: Any) -> subprocess.Popen[str]:
    """A subprocess whose stderr (and stdout, unless piped) goes to `log`."""
    handle = log.open("w")
    kw.setdefault("stdout", handle)
    return subprocess.Popen(args, env=env, stderr=handle, text=True, **kw)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# `floe checks run` in-process, then kept alive (its Prometheus endpoint is a daemon thread) until stdin closes.
_RUN_AND_HOLD = """
import sys
from floe_monitoring_defs.cli import cli
try:
    cli(["checks", "run"])
except SystemExit:
    pass
print("floe-checks-done", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    demo = build_warehouse(tmp_path / "demo")
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "examples" / "contracts", contracts)
    refused = _free_port()  # nothing listens: every delivery to `hook` fails
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "alerts": {
                    "channels": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{refused}/events"}},
                    "routing_rules": [{"channel_name": "hook", "min_severity": "info"}],
                }
            }
        ),
        "utf-8",
    )
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "FLOE_CONTRACTS_DIR": str(contracts),
        "FLOE_MONITORING_CONFIG": str(config),
        "FLOE_MONITORING_DB_URL": store_url,
        "FLOE_SPOOL_DIR": str(tmp_path / "spool"),
        "OTEL_SERVICE_NAME": "floe-monitoring-test",
    } | demo.catalog_env()
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", "utf-8")
    yield {"env": env, "tmp": tmp_path, "store_url": store_url}


@needs_prometheus
def test_live_prometheus_scrapes_floe_and_staged_faults_fire(deployment: dict[str, Any]) -> None:
    env: dict[str, str] = deployment["env"]
    tmp: Path = deployment["tmp"]
    floe = str(Path(sys.executable).with_name("floe"))
    run_port, exporter_port, prom_port = _free_port(), _free_port(), _free_port()

    rules = tmp / "rules.yaml"  # the durations are promtool's business; live, every rule fires on first evaluation
    rules.write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s", RULES.read_text("utf-8")), "utf-8")
    prom_config = tmp / "prometheus.yml"
    prom_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {"job_name": "floe-metrics", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
                    {"job_name": "floe-run", "static_configs": [{"targets": [f"127.0.0.1:{run_port}"]}]},
                ],
            }
        ),
        "utf-8",
    )
    procs: list[subprocess.Popen[str]] = []
    try:
        prometheus = _spawn(
            [
                PROMETHEUS,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            {"PATH": env["PATH"], "HOME": str(tmp)},
            tmp / "prometheus.log",
            cwd=tmp,
        )
        procs.append(prometheus)
        prom = Prom(f"http://127.0.0.1:{prom_port}")
        _wait("Prometheus ready", lambda: _ready(prom), timeout=60)

        run = _spawn(
            [sys.executable, "-c", _RUN_AND_HOLD],
            env | {"OTEL_EXPORTER_PROMETHEUS_PORT": str(run_port)},
            tmp / "run.log",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        procs.append(run)
        assert run.stdout is not None
        printed = []
        for line in run.stdout:  # the check run's summary, then the marker once every checks job has run
            printed.append(line)
            if line.strip() == "floe-checks-done":
                break
        assert printed and printed[-1].strip() == "floe-checks-done", "".join(printed) + (tmp / "run.log").read_text()

        exporter = _spawn(
            [floe, "metrics", "serve", "--port", str(exporter_port), "--refresh-seconds", "0"],
            env,
            tmp / "exporter.log",
        )
        procs.append(exporter)

        # the run's instruments hold their final values now: wait for a scrape of them
        _wait("the check run's violations scraped", lambda: prom.query("floe_contract_violations_total"))
        scraped = _wait("the exporter scraped", lambda: prom.query("floe_monitor_store_up == 1"))
        # alerts evaluated before that scrape (FloeMonitorAbsent, with `for: 0s`) stay active until the next
        # evaluation: wait for every group to have evaluated after the query that saw the sample
        sample_at = datetime.fromtimestamp(float(scraped[0]["value"][0]), tz=UTC)
        _wait("every rule group evaluated after the exporter was seen", lambda: prom.evaluated_after(sample_at))

        # every rule loads and evaluates without error
        def rules_ok() -> bool:
            rs = prom.rules()
            return len(rs) == len(_rule_exprs()) and all(r["health"] == "ok" for r in rs)

        _wait("every rule evaluated without error", rules_ok)
        assert all(not r.get("lastError") for r in prom.rules())

        # every metric name the rules and the dashboard use has a series (the run's, after it is scraped)
        names = _names(_rule_exprs()) | _names(_dashboard_exprs())
        assert {
            "floe_contract_last_check_timestamp_seconds",  # from the store, by the exporter
            "floe_alert_outbox_backlog",
            "floe_contract_violations_total",  # from the check run's own endpoint
            "floe_contract_check_duration_seconds_bucket",
            "floe_alert_delivery_failures_total",
        } <= names
        missing = sorted(n for n in names if not prom.query(f"last_over_time({n}[1h])"))
        assert not missing, missing

        # staged fault 1: the channel refuses connections -> FloeAlertDeliveryFailing for it, and only for it
        failing = _wait("FloeAlertDeliveryFailing", lambda: _firing(prom, "FloeAlertDeliveryFailing"))
        assert [a["channel"] for a in failing] == ["hook"]
        assert _firing(prom, "FloeCheckKindStale") == []
        assert _firing(prom, "FloeStoreDown") == [] and _firing(prom, "FloeMonitorAbsent") == []
        assert _firing(prom, "FloeConfigInvalid") == [] and _firing(prom, "FloeContractsRefused") == []

        # staged fault 2: schema_drift stopped a day ago (its completed checks moved back in the store)
        store = MonitoringStore(deployment["store_url"], auto_migrate=False)
        try:
            r = t.contract_check_results.c
            with store.db.transaction("staging a stopped check kind", write=True) as conn:
                moved = conn.execute(
                    sa.update(t.contract_check_results)
                    .where(r.check_type == "schema_drift")
                    .values(checked_at=utcnow() - timedelta(days=1))
                ).rowcount
            assert moved > 0
        finally:
            store.dispose()
        stale = _wait("FloeCheckKindStale", lambda: _firing(prom, "FloeCheckKindStale"))
        assert [a["check_type"] for a in stale] == ["schema_drift"]

        # staged fault 3: the exporter stops -> FloeMonitorAbsent
        assert _firing(prom, "FloeMonitorAbsent") == []
        _stop(exporter)
        absent = _wait("FloeMonitorAbsent", lambda: _firing(prom, "FloeMonitorAbsent"))
        assert absent[0]["severity"] == "critical"
    finally:
        for proc in reversed(procs):
            if proc.stdin is not None:
                proc.stdin.close()
            _stop(proc)


def _ready(prom: Prom) -> bool:
    try:
        return prom.http.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False
