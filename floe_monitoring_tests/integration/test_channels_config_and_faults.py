"""Every built-in channel: built from a config dict with `*_env` secrets, config errors that name the
key and never the secret, and a receiver that refuses, fails or hangs giving a quick retryable failure."""

import contextlib
import smtplib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from floe_monitoring_defs.alerting.channels import base
from floe_monitoring_defs.alerting.channels.base import (
    AlertChannel,
    ChannelConfigError,
    ChannelProblem,
    ChannelSecretMissing,
    build_channel,
    channel_types,
    open_channels,
)
from floe_monitoring_defs.alerting.model import AlertBatch, DeliveryResult
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, SilentServer, alert_batch, alert_item, free_port

pytestmark = pytest.mark.integration

SECRETS = {
    "FLOE_T_WEBHOOK_SECRET": "hmac-secret-value-0001",
    "FLOE_T_SLACK_URL": "https://hooks.slack.com/services/T00/B00/slackTOKENvalue0002",
    "FLOE_T_SMTP_PASSWORD": "smtp-password-value-0003",
    "FLOE_T_PD_KEY": "pagerdutyROUTINGkeyValue00000004",
}
SECRET_VALUES = [*SECRETS.values(), "slackTOKENvalue0002", "/services/T00/B00/slackTOKENvalue0002"]

VALID: dict[str, dict[str, Any]] = {
    "webhook": {"type": "webhook", "url": "https://hooks.example.com/floe", "secret_env": "FLOE_T_WEBHOOK_SECRET"},
    "slack": {"type": "slack", "webhook_url_env": "FLOE_T_SLACK_URL"},
    "email": {
        "type": "email",
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "starttls": True,
        "from_address": "floe@example.com",
        "to_addresses": ["oncall@example.com"],
        "username": "floe",
        "password_env": "FLOE_T_SMTP_PASSWORD",
    },
    "alertmanager": {"type": "alertmanager", "url": "http://alertmanager:9093"},
    "pagerduty": {"type": "pagerduty", "routing_key_env": "FLOE_T_PD_KEY"},
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def no_secret_in(text: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text


def test_the_five_built_ins_are_registered() -> None:
    assert set(channel_types()) >= {"webhook", "slack", "email", "alertmanager", "pagerduty"}
    for name, cls in channel_types().items():
        assert cls.type_name == name


@pytest.mark.parametrize("kind", sorted(VALID))
def test_build_from_config_dict_with_env_secrets(kind: str, env: dict[str, str]) -> None:
    channel = build_channel(f"my-{kind}", VALID[kind])
    assert channel.type_name == kind and channel.name == f"my-{kind}"
    # validate_config checks the very config and secrets the channel was built with (build_channel
    # already required it to find no problem in them): spoil one of each and it names the key.
    spoiled = type(channel)(channel.name, channel.config.model_copy(update={"timeout_seconds": 0}), channel.secrets)
    assert spoiled.validate_config() == ["timeout_seconds: must be greater than 0"]
    assert type(channel)(channel.name, channel.config, {}).validate_config() == WITHOUT_SECRETS[kind]
    no_secret_in(repr(channel.config))
    held = {value for name, value in env.items() if name in VALID[kind].values()}
    assert held <= set(channel.secret_values())  # so that redact() hides each of them


# What validate_config says of each VALID config once the channel holds none of its secrets.
WITHOUT_SECRETS = {
    "webhook": [],  # the signing secret is optional
    "slack": ["webhook_url_env: required (the name of the environment variable holding the webhook url)"],
    "email": ["username: given without password_env"],
    "alertmanager": [],
    "pagerduty": ["routing_key_env: required (the name of the environment variable holding the routing key)"],
}


def override(kind: str, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    spec = {k: v for k, v in VALID[kind].items() if k not in drop}
    spec.update(changes)
    return spec


CONFIG_ERRORS = [
    pytest.param(override("webhook", drop=("url",)), "alerts.channels.x.url: Field required", id="webhook-no-url"),
    pytest.param(
        override("webhook", url="ftp://hooks.example.com/x"),
        "url: must be an http:// or https:// URL",
        id="webhook-ftp-url",
    ),
    pytest.param(override("webhook", url="hooks.example.com/floe"), "url: must be an http", id="webhook-no-scheme"),
    pytest.param(override("webhook", url="http://:8080/x"), "url: the URL has no host", id="webhook-no-host"),
    pytest.param(
        override("webhook", secret_env="FLOE_T_UNSET"),
        "secret_env: environment variable FLOE_T_UNSET is not set",
        id="webhook-unset-env",
    ),
    pytest.param(
        override("webhook", secrte_env="FLOE_T_WEBHOOK_SECRET"),
        "secrte_env: not a setting of the webhook channel",
        id="webhook-typo-secret",
    ),
    pytest.param(override("webhook", signature_header="X Floe"), "signature_header:", id="webhook-bad-header"),
    pytest.param(
        override("webhook", retries=3),
        "alerts.channels.x.retries: Extra inputs are not permitted",
        id="webhook-unknown-key",
    ),
    pytest.param(override("slack", drop=("webhook_url_env",)), "webhook_url_env: required", id="slack-no-url"),
    pytest.param(
        override("slack", webhook_url_env="FLOE_T_SMTP_PASSWORD"),
        "webhook_url_env: the variable's value is not an http:// or https:// URL",
        id="slack-not-a-url",
    ),
    pytest.param(
        override("slack", webhook_url="https://hooks.slack.com/services/T00/B00/slackTOKENvalue0002"),
        "webhook_url: Extra inputs are not permitted",
        id="slack-inline-url",
    ),
    pytest.param(override("email", drop=("to_addresses",)), "to_addresses: Field required", id="email-no-to"),
    pytest.param(
        override("email", to_addresses=[]), "to_addresses: at least one recipient is required", id="email-empty-to"
    ),
    pytest.param(
        override("email", to_addresses=["oncall"]), "to_addresses[0]: not an email address", id="email-bad-to"
    ),
    pytest.param(override("email", from_address=""), "from_address: required", id="email-no-from"),
    pytest.param(
        override("email", drop=("username",)), "password_env: given without username", id="email-password-without-user"
    ),
    pytest.param(
        override("email", drop=("password_env",)),
        "username: given without password_env",
        id="email-user-without-password",
    ),
    pytest.param(override("email", use_ssl=True), "starttls: cannot be combined with use_ssl", id="email-tls-twice"),
    pytest.param(override("email", ca_file="/nonexistent/ca.pem"), "ca_file: no such file", id="email-ca-file"),
    pytest.param(override("email", smtp_port=0), "smtp_port: must be between 1 and 65535", id="email-port"),
    pytest.param(override("alertmanager", url="alertmanager:9093"), "url: must be an http", id="am-no-scheme"),
    pytest.param(override("alertmanager", dagster_url="dagster"), "dagster_url: must be an http", id="am-dagster"),
    pytest.param(
        override("alertmanager", firing_ttl_minutes=0), "firing_ttl_minutes: must be greater than 0", id="am-ttl"
    ),
    pytest.param(override("pagerduty", drop=("routing_key_env",)), "routing_key_env: required", id="pd-no-key"),
    pytest.param(
        override("pagerduty", routing_key_env=""),
        "routing_key_env: must name an environment variable",
        id="pd-empty-env",
    ),
    pytest.param(override("pagerduty", url="events.pagerduty.com"), "url: must be an http", id="pd-url"),
    pytest.param(override("pagerduty", timeout_seconds=0), "timeout_seconds: must be greater than 0", id="pd-timeout"),
    pytest.param(
        {"type": "carrier-pigeon"},
        "alerts.channels.x.type: 'carrier-pigeon' is not a known channel type",
        id="unknown-type",
    ),
    pytest.param(
        override("slack", webhook_url_env="https://hooks.slack.com/services/T00/B00/slackTOKENvalue0002"),
        "alerts.channels.x.webhook_url_env: not the name of an environment variable; give the NAME of an "
        "environment variable that holds the secret, never the secret itself (the value is not shown)",
        id="slack-secret-pasted-into-env",
    ),
    pytest.param(
        override("pagerduty", routing_key_env="pagerdutyROUTINGkeyValue00000004"),
        "alerts.channels.x.routing_key_env: not the name of an environment variable",
        id="pd-key-pasted-into-env",
    ),
    pytest.param(
        override("pagerduty", url="events.pagerduty.com", routing_key_env="FLOE_T_UNSET"),
        "alerts.channels.x.url: must be an http:// or https:// URL",
        id="pd-bad-url-while-the-secret-is-unset-too",
    ),
    pytest.param(
        override("webhook", secrte_env="FLOE_T_UNSET"),
        "alerts.channels.x.secrte_env: not a setting of the webhook channel",
        id="webhook-typo-secret-unset",
    ),
    pytest.param(
        override("email", to_addresses=["oncall"], password_env="FLOE_T_UNSET"),
        "alerts.channels.x.to_addresses[0]: not an email address",
        id="email-bad-to-while-the-password-is-unset",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CONFIG_ERRORS)
def test_config_errors_name_the_key_and_hide_secrets(spec: dict[str, Any], expected: str, env: dict[str, str]) -> None:
    with pytest.raises(ChannelConfigError) as raised:
        build_channel("x", spec)
    assert expected in str(raised.value)
    assert str(raised.value).startswith("alerts.channels.x")
    assert isinstance(raised.value, ChannelSecretMissing) == ("is not set" in expected)  # unset: told apart
    no_secret_in(str(raised.value))


def test_a_secret_variable_that_is_not_set_is_told_apart(env: dict[str, str]) -> None:
    """Right settings, one secret missing: `ChannelSecretMissing` naming the variable (only its NAME)."""
    with pytest.raises(ChannelSecretMissing) as raised:
        build_channel("pd", override("pagerduty", routing_key_env="FLOE_T_UNSET"))
    assert str(raised.value) == "alerts.channels.pd.routing_key_env: environment variable FLOE_T_UNSET is not set"
    assert raised.value.variable == "FLOE_T_UNSET"


def test_open_channels_sets_each_bad_channel_aside_and_builds_the_others(env: dict[str, str]) -> None:
    specs = {
        **{kind: VALID[kind] for kind in ("webhook", "slack", "alertmanager")},
        "pd": override("pagerduty", routing_key_env="FLOE_T_UNSET"),
        "mail": override("email", smtp_port=0),
        "odd": "https://hooks.example.com/a-url-instead-of-settings",
    }
    channels, problems = open_channels(specs)
    assert sorted(channels) == ["alertmanager", "slack", "webhook"]
    assert problems == {
        "pd": ChannelProblem(
            "pd", "alerts.channels.pd.routing_key_env: environment variable FLOE_T_UNSET is not set", "FLOE_T_UNSET"
        ),
        "mail": ChannelProblem("mail", "alerts.channels.mail.smtp_port: must be between 1 and 65535"),
        "odd": ChannelProblem("odd", "alerts.channels.odd: must be a mapping with the channel's `type` and settings"),
    }


def test_a_channel_plugin_that_does_not_import_disables_its_channels_only(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = dict(channel_types())
    broken = {"sms": "the channel plugin acme_sms:SMSChannel does not load (ImportError)"}
    monkeypatch.setattr(base, "_plugins", lambda: (loaded, broken))
    channels, problems = open_channels({"texts": {"type": "sms"}, "am": VALID["alertmanager"]})
    assert list(channels) == ["am"]
    assert problems["texts"].reason == (
        "alerts.channels.texts.type: the channel plugin acme_sms:SMSChannel does not load (ImportError)"
    )


# --- faults ------------------------------------------------------------------------------------------

TIMEOUT = 1.0
HANG_GUARD = 30.0  # seconds; only reached when a send hangs, and then the test fails
Make = Callable[[str, int], AlertChannel]


def http_channel(kind: str, url: str) -> AlertChannel:
    spec: dict[str, Any] = {"timeout_seconds": TIMEOUT}
    if kind == "slack":
        # the Slack URL is the secret: point the secret's value at the receiver
        return build_channel(
            "f",
            {"type": "slack", "webhook_url_env": "FLOE_T_SLACK_LOOPBACK", **spec},
            environ={"FLOE_T_SLACK_LOOPBACK": url + "/services/T00/B00/slackTOKENvalue0002"},
        )
    spec.update(
        {"webhook": {"url": url}, "alertmanager": {"url": url}, "pagerduty": {"url": url + "/v2/enqueue"}}[kind]
    )
    return build_channel("f", {**override(kind, drop=("url",)), **spec})


@contextlib.contextmanager
def http_fault(fault: str) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as recorder:
        if fault == "refused":
            recorder.refuse()
        elif fault == "500":
            recorder.fail(500)
        else:
            recorder.hang()  # until the recorder stops: only the client's own timeout ends the wait
        yield recorder


@pytest.fixture
def client_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeout of every HTTP (httpx) and SMTP (smtplib) client the channels open, in seconds (None: none given)."""
    seen: list[float | None] = []
    real_httpx, real_smtp = httpx.Client.__init__, smtplib.SMTP.__init__

    def httpx_init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        timeout = kwargs.get("timeout")
        seen.append(timeout.read if isinstance(timeout, httpx.Timeout) else timeout)
        real_httpx(self, *args, **kwargs)

    def smtp_init(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> None:
        seen.append(kwargs.get("timeout"))
        real_smtp(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", httpx_init)
    monkeypatch.setattr(smtplib.SMTP, "__init__", smtp_init)
    return seen


def send_guarded(channel: AlertChannel, batch: AlertBatch) -> DeliveryResult:
    """`channel.send(batch)`, failing the test (instead of hanging it) if it never returns."""
    results: list[DeliveryResult] = []
    sender = threading.Thread(target=lambda: results.append(channel.send(batch)), daemon=True)
    sender.start()
    sender.join(HANG_GUARD)
    assert results, "send() did not return"
    return results[0]


@contextlib.contextmanager
def smtp_fault(fault: str) -> Iterator[dict[str, Any]]:
    base = {**VALID["email"], "smtp_host": "127.0.0.1", "starttls": False, "timeout_seconds": TIMEOUT}
    if fault == "refused":
        yield {**base, "smtp_port": free_port()}
    elif fault == "hang":
        with SilentServer() as silent:
            yield {**base, "smtp_port": silent.port}
    else:  # the SMTP counterpart of HTTP 500: a temporary 4xx failure
        with alerting_receivers.run_smtp_server() as server:
            server.reply.append("451 4.3.0 mail system overloaded")
            yield {k: v for k, v in base.items() if k not in ("username", "password_env")} | {"smtp_port": server.port}


EXPECTED_STATUS = {"refused": "connect_error", "500": "http_500", "hang": "timeout"}
# Requests that reach the HTTP receiver for a batch of two: webhook and PagerDuty send one per item but stop
# at the first timeout (one timeout per cycle, not per item); Slack and Alertmanager send one per batch.
EXPECTED_REQUESTS = {
    "refused": {"webhook": 0, "slack": 0, "alertmanager": 0, "pagerduty": 0},
    "500": {"webhook": 2, "slack": 1, "alertmanager": 1, "pagerduty": 2},
    "hang": {"webhook": 1, "slack": 1, "alertmanager": 1, "pagerduty": 1},
}


@pytest.mark.parametrize("fault", ["refused", "500", "hang"])
@pytest.mark.parametrize("kind", sorted(VALID))
def test_unreachable_failing_or_hung_receiver_is_a_quick_retryable_failure(
    kind: str, fault: str, env: dict[str, str], client_timeouts: list[float | None]
) -> None:
    """Quick: every client waits the configured TIMEOUT at most, and a hung receiver costs one wait."""
    batch = alert_batch(alert_item(), alert_item())
    if kind == "email":
        with smtp_fault(fault) as spec:
            channel = build_channel("f", spec)
            result = send_guarded(channel, batch)
        expected = {"500": "smtp_4xx"}.get(fault, EXPECTED_STATUS[fault])
    else:
        with http_fault(fault) as recorder:
            channel = http_channel(kind, recorder.url)
            result = send_guarded(channel, batch)
            arrived = recorder.wait_for(EXPECTED_REQUESTS[fault][kind])
        assert len(arrived) == EXPECTED_REQUESTS[fault][kind]
        expected = EXPECTED_STATUS[fault]
    assert not result.ok and result.retryable, result
    assert result.status == expected, result
    assert client_timeouts and set(client_timeouts) == {TIMEOUT}
    assert result.error
    no_secret_in(repr(result))
    if fault != "500" or kind != "email":
        assert "127.0.0.1:" in result.error  # says where, by host:port only


@pytest.mark.parametrize("kind", sorted(VALID))
def test_resolve_never_raises_either(kind: str, env: dict[str, str]) -> None:
    with http_fault("refused") as recorder:
        channel = (
            http_channel(kind, recorder.url)
            if kind != "email"
            else build_channel(
                "f", {**VALID["email"], "smtp_host": "127.0.0.1", "smtp_port": free_port(), "timeout_seconds": TIMEOUT}
            )
        )
        result = channel.resolve(alert_batch())
    assert not result.ok and result.retryable and result.status == "connect_error"
    no_secret_in(repr(result))


@pytest.mark.parametrize("kind", sorted(VALID))
def test_an_empty_batch_is_a_no_op(kind: str, env: dict[str, str]) -> None:
    channel = build_channel("f", VALID[kind])
    result = channel.send(AlertBatch(contract_name="orders", contract_version="1", items=()))
    assert result.ok and result.detail["delivered"] == "0"
