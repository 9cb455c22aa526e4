"""No secret anywhere, in any of its forms (issue 12, acceptance 6).

A DEBUG-level run (root logger, httpx, httpcore and aiosmtpd at DEBUG) with every channel failing: the
webhook, Slack and PagerDuty receivers answer 500 and echo back what they received (path, headers, body), the
SMTP server refuses the password, Alertmanager's port refuses connections. The secrets sit in a URL path and
query (the Slack webhook URL, configured with an upper-case scheme and characters httpx percent-encodes), in a
header (the webhook's HMAC secret signs it), in a body (the PagerDuty routing key) and in SMTP AUTH (the
password). The core pipeline and dispatcher run, then a Dagster in-process job run and a sensor tick on an
instance in DAGSTER_HOME (Dagster's log manager, event log and compute logs). Captured: every record reaching
a handler on the root logger, stdout and stderr (capfd: file descriptors, so anything written below Python's
`sys` objects too), every table of the store, every file under DAGSTER_HOME. None holds a secret in any of the
forms listed by `forms()` below, written here independently of the redaction code, while the receivers did
get them (so a leak would show).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
import yaml
from pydantic import SecretStr
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.alerting.channels.base import open_channels
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.config import load_config
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import alerting as alerting_defs
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore, default_db_url
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.telemetry import redaction
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, RecordedRequest, Reply, free_port, run_smtp_server
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

SLACK_TOKEN = "xoxTOKEN{9f3a}SECRETvalue77"  # `{`, `}`: httpx sends and logs them percent-encoded
SLACK_QUERY = "Qv4l ue|Z9x7"  # a space: %20 on the wire, `+` in form encoding
SLACK_PATH = f"/services/T0AB12CD34/B1EF56GH78/{SLACK_TOKEN}"
HMAC_SECRET = "hmac-S3cr3t-header-7f1e"
ROUTING_KEY = "pd-routing-key-0123456789abcdef"
SMTP_USER, SMTP_PASSWORD = "floe", "smtp-Passw0rd-Z9q!"

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(slack_url: str) -> dict[str, str]:
    """Every form a secret is looked for in, by a name for the failure message (never the value)."""
    wire = httpx.URL(slack_url)
    token_wire = quote(SLACK_TOKEN, safe="")
    out = {
        "slack url as configured": slack_url,
        "slack url, lower-case scheme": "http" + slack_url[4:],
        "slack url as httpx renders it": str(wire),
        "slack path and query on the wire": wire.raw_path.decode(),
        "slack path": SLACK_PATH,
        "slack token": SLACK_TOKEN,
        "slack token percent-encoded": token_wire,
        "slack token percent-encoded, lower-case hex": token_wire.replace("%7B", "%7b").replace("%7D", "%7d"),
        "slack query value": SLACK_QUERY,
        "slack query value on the wire": quote(SLACK_QUERY, safe="|"),
        "slack query value percent-encoded": quote(SLACK_QUERY, safe=""),
        "slack query value form-encoded": quote_plus(SLACK_QUERY),
        "hmac secret": HMAC_SECRET,
        "hmac secret base64": b64(HMAC_SECRET),
        "routing key": ROUTING_KEY,
        "routing key JSON-quoted": json.dumps(ROUTING_KEY),
        "smtp password": SMTP_PASSWORD,
        "smtp password percent-encoded": quote(SMTP_PASSWORD, safe=""),
        "smtp password base64 (AUTH LOGIN)": b64(SMTP_PASSWORD),
        "smtp credentials base64 (AUTH PLAIN)": b64(f"\0{SMTP_USER}\0{SMTP_PASSWORD}"),
    }
    return out


def echo_500(request: RecordedRequest) -> Reply:
    """A receiver that fails and quotes back everything it got, as some do in their error bodies."""
    text = f"upstream error for {request.method} {request.path} headers={request.headers} body={request.body[:400]!r}"
    return Reply(500, text.encode())


class Capture(logging.Handler):
    """Everything a handler on the root logger is given: the formatted record, its raw message and args, and
    Dagster's copy of the message."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        self.texts += [self.format(record), str(record.msg), repr(record.args), str(meta.get("orig_message", ""))]


class SteppedClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def receivers() -> Iterator[dict[str, HTTPRecorder]]:
    recs = {name: HTTPRecorder(echo_500).start() for name in ("webhook", "slack", "pagerduty")}
    yield recs
    for r in recs.values():
        r.stop()


@pytest.fixture
def debug_logging() -> Iterator[Capture]:
    root = logging.getLogger()
    capture = Capture()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore", "mail.log", "dagster")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def dump_store(store: MonitoringStore) -> list[str]:
    out: list[str] = []
    with store.db.transaction("dumping every table") as conn:
        for table in t.metadata.sorted_tables:
            out += [json.dumps(dict(row._mapping), default=str) for row in conn.execute(sa.select(table))]
        names = sa.inspect(conn).get_table_names()
    assert {tb.name for tb in t.metadata.sorted_tables} <= set(names)
    return out


def read_tree(root: Path) -> list[str]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out += [f"{path}: " + data.decode("utf-8", "replace"), data.decode("latin-1")]
    return out


def test_debug_run_with_every_channel_failing_leaks_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receivers: dict[str, HTTPRecorder],
    debug_logging: Capture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # the store and the spool default to it
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    create(
        make_catalog(tmp_path),
        "shop.orders",
        SCHEMA,
        {"id": ["a"], "amount": [Decimal("1.00")], "updated_at": [datetime.now(UTC) - timedelta(hours=3)]},
    )
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    server = {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
    props = [
        {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
        {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
        {"name": "updated_at", "logicalType": "timestamp", "required": True},
    ]
    contract_doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:orders",
        "name": "orders",
        "version": "1.0.0",
        "servers": [server],
        "schema": [{"name": "orders", "properties": props}],
        "slaProperties": [{"property": "freshness", "value": "PT1H", "element": "updated_at"}],
    }
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc))
    slack_url = f"HTTP://127.0.0.1:{receivers['slack'].port}{SLACK_PATH}?sig={SLACK_QUERY}"
    channels = {
        "ops-webhook": {
            "type": "webhook",
            "url": receivers["webhook"].url_for("/events"),
            "secret_env": "FLOE_TEST_HMAC",
            "timeout_seconds": 2,
        },
        "team-slack": {"type": "slack", "webhook_url_env": "FLOE_TEST_SLACK_URL", "timeout_seconds": 2},
        "pagerduty": {
            "type": "pagerduty",
            "routing_key_env": "FLOE_TEST_PD_KEY",
            "url": receivers["pagerduty"].url_for("/v2/enqueue"),
            "timeout_seconds": 2,
        },
        "alertmanager": {"type": "alertmanager", "url": f"http://127.0.0.1:{free_port()}", "timeout_seconds": 2},
    }
    with run_smtp_server(username=SMTP_USER, password="the-server-wants-another-one") as smtp:
        channels["mail"] = {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "starttls": False,
            "from_address": "floe@example.com",
            "to_addresses": ["oncall@example.com"],
            "username": SMTP_USER,
            "password_env": "FLOE_TEST_SMTP_PASSWORD",
            "timeout_seconds": 2,
        }
        config_doc = {
            "alerts": {
                "retry_base_seconds": 1,
                "retry_max_seconds": 1,
                "channels": channels,
                "routing_rules": [{"channel_name": name, "min_severity": "warning"} for name in channels],
            }
        }
        (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(config_doc))
        monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(tmp_path / "monitoring.yaml"))
        monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
        monkeypatch.setenv("FLOE_TEST_HMAC", HMAC_SECRET)
        monkeypatch.setenv("FLOE_TEST_SLACK_URL", slack_url)
        monkeypatch.setenv("FLOE_TEST_PD_KEY", ROUTING_KEY)
        monkeypatch.setenv("FLOE_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
        clock = SteppedClock()
        monkeypatch.setattr(alerting_defs, "AlertDispatcher", functools.partial(AlertDispatcher, clock=clock))

        defs = build_defs()  # builds (and registers the secrets of) every channel
        texts: list[str] = []

        # 1. Dagster: a checks run whose eager dispatch fails on every channel (log manager, event log, compute
        # logs). Dagster also captures the root logger here (so httpx's records go through its log manager into
        # the event log), at DEBUG: a record must be masked before DagsterLogHandler, which ignores handler
        # filters, sees it.
        python_logs = {"managed_python_loggers": ["root"], "python_log_level": "DEBUG"}
        with dg.instance_for_test(temp_dir=str(dagster_home), overrides={"python_logs": python_logs}) as instance:
            result = defs.resolve_job_def("freshness_every_15m_checks").execute_in_process(instance=instance)
            assert result.success
            run_logs = [repr(r) for r in instance.all_logs(result.run_id)]
            assert any("HTTP Request: POST" in x for x in run_logs)  # httpx's records did reach the event log
            texts += run_logs
            for ev in result.get_asset_check_evaluations():
                texts.append(repr(ev.metadata) + (ev.description or ""))

            # 2. The core: the pipeline checks again (a repeat, deduplicated) and a dispatcher retries what is due:
            # every channel fails again.
            config = load_config(tmp_path / "monitoring.yaml")
            built, problems = open_channels(config.alerts.channels)
            assert problems == {}
            store = MonitoringStore(default_db_url())
            targets = [(c, tb) for c in load_all(contracts).contracts for tb in c.tables]
            pipeline = CheckPipeline(
                IcebergSource(),
                store,
                config,
                dispatcher=lambda: AlertDispatcher(store.outbox, built, config.alerts, clock=clock),
            )
            [run] = list(pipeline.run("freshness", targets))
            assert run.persisted and run.violations
            clock.now += timedelta(seconds=5)
            retry = AlertDispatcher(store.outbox, built, config.alerts, clock=clock).dispatch()
            assert retry.delivered == 0 and retry.failed > 0
            texts.append(retry.summary())

            # 3. A dispatch sensor tick: everything fails once more.
            clock.now += timedelta(seconds=5)
            sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
            resources = dict(defs.resources or {})
            with dg.build_sensor_context(instance=instance, definitions=defs, resources=resources) as ctx:
                texts.append(sensor.evaluate_tick(ctx).skip_message or "")
            texts += read_tree(dagster_home)
        texts += dump_store(store)
        attempts = store.outbox.attempts()
        store.dispose()
        auth_attempts = list(smtp.auth_attempts)

    texts += read_tree(dagster_home)
    captured = capfd.readouterr()
    texts += [captured.out, captured.err, *debug_logging.texts]
    blob = "\n".join(texts)

    # The run was what it claims: DEBUG records of httpx and aiosmtpd were captured, every channel failed and
    # its error was recorded, and the receivers did get the secrets (so a leak would be seen above).
    assert "HTTP Request: POST" in blob and any("AUTH" in x for x in debug_logging.texts)
    failed = {a["channel"] for a in attempts if not a["ok"]}
    assert failed == set(channels)
    assert not any(a["ok"] for a in attempts)
    for name in ("webhook", "slack", "pagerduty"):
        assert f"HTTP 500 from 127.0.0.1:{receivers[name].port}" in blob
    assert any(httpx.URL(slack_url).raw_path.decode() == r.path for r in receivers["slack"].requests)
    assert any(ROUTING_KEY in r.body.decode() for r in receivers["pagerduty"].requests)
    assert auth_attempts and not any(ok for _mechanism, ok in auth_attempts)
    assert "***" in blob  # the echoed secrets were masked, not dropped with their messages

    leaked = [name for name, value in forms(slack_url).items() if value in blob]
    assert leaked == []


# -- the redaction component on its own ----------------------------------------------------------------


class ListHandler(logging.Handler):
    """A handler without any filter: it shows what a record holds when it arrives."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lone_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    """A logger no filter was ever put on (not a project or library logger), not propagating to root."""
    logger = logging.getLogger(f"some.library.{uuid.uuid4().hex}")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_every_record_of_any_logger_is_masked_before_any_handler(
    lone_logger: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = lone_logger
    secret = "Tok" + uuid.uuid4().hex
    redaction.register_secret(secret)
    logger.info("calling with key=%s", secret)
    try:
        raise RuntimeError(f"the server refused {secret}")
    except RuntimeError:
        logger.exception("failed")
    text = "\n".join(handler.lines)
    assert "calling with key=***" in text and "RuntimeError: the server refused ***" in text
    assert secret not in text


def test_a_secret_url_is_masked_in_the_forms_it_takes() -> None:
    token = "tk" + uuid.uuid4().hex[:20]
    url = f"HTTPS://Hooks.Example.COM/services/T0{token[:6]}/B1{token[6:12]}/{token}%7Ex?code=q{token[:9]}"
    redaction.register_secret(url)
    lower = "https://hooks.example.com" + url[len("HTTPS://Hooks.Example.COM") :]
    for seen in (
        url,
        lower,  # scheme and host as libraries print them
        lower.replace(".com/", ".com:443/"),  # with the default port
        lower.split("?")[0] + "/",  # a trailing slash
        f"POST {url.split('COM')[1]} HTTP/1.1",  # urllib3: the path alone
        f"segment {token}%7Ex",  # the token segment alone
        f"lower-case hex {token}%7ex",  # ... percent-encoded the other way
        f"decoded {token}~x",  # ... decoded
        f"value q{token[:9]}",  # the query value alone
    ):
        masked = redaction.redact(seen)
        assert token not in masked and f"q{token[:9]}" not in masked, seen
    assert redaction.redact("https://hooks.example.com/services/") == "https://hooks.example.com/services/"


def test_smtp_auth_blobs_of_a_registered_password_are_masked() -> None:
    password = "pw-" + uuid.uuid4().hex[:12]
    redaction.register_secret(password)
    for user in ("a", "ab", "abc", "floe"):  # every byte alignment of the password inside AUTH PLAIN's blob
        blob = b64(f"\0{user}\0{password}")
        masked = redaction.redact(f"AUTH PLAIN {blob}")
        assert blob not in masked and "***" in masked
        # At most the 2 characters at each edge of the password's part of the blob stay visible.
        assert base64.b64decode(blob)[len(user) + 2 :].decode() == password
    assert redaction.redact(b64(password)) == "***"  # AUTH LOGIN sends the password's base64 alone


def test_a_channel_built_directly_redacts_its_secrets_in_every_form() -> None:
    from floe_monitoring_defs.alerting.channels.slack import SlackChannel, SlackConfig

    token = "Tok" + uuid.uuid4().hex
    url = f"HTTP://127.0.0.1:9/services/T0AAAAAAAA/B1BBBBBBBB/{token}"
    channel = SlackChannel("direct", SlackConfig(type="slack"), {"webhook_url": SecretStr(url)})
    masked = channel.redact(f"error from http://127.0.0.1:9/services/T0AAAAAAAA/B1BBBBBBBB/{token}: {token}")
    assert token not in masked and masked.count("***") == 2


def test_dagster_copy_of_the_message_is_masked() -> None:
    secret = "dg-" + uuid.uuid4().hex
    redaction.register_secret(secret)
    record = logging.makeLogRecord({"msg": f"with {secret}"})  # built without the record factory
    record.dagster_meta = {"orig_message": f"with {secret}"}
    assert redaction.FILTER.filter(record)
    assert record.getMessage() == "with ***" and record.dagster_meta["orig_message"] == "with ***"  # type: ignore[attr-defined]
