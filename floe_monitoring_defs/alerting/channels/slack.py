"""Slack channel: one Block Kit message per batch through an incoming webhook.

The webhook URL is the credential, so it only comes from the environment (`webhook_url_env`) and
neither it nor its path ever appears in an error. Slack's limits are enforced here because slack_sdk
does not check all of them (wire-formats.md 2): header <= 150 characters, section text <= 3000,
<= 10 fields of <= 2000 each, <= 50 blocks, and about 13k characters of blocks in total (Slack's
undocumented `msg_blocks_too_long`, slackapi/bolt-js#2509). Content over a limit is cut with an
ellipsis and items that do not fit are summarised as "+N more": a long alert is shortened, never refused.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from floe_monitoring_defs.alerting.channels.base import ChannelConfig
from floe_monitoring_defs.alerting.channels.common import (
    ELLIPSIS,
    PooledHttpChannel,
    context_summary,
    http_post,
    http_url_problem,
    is_resolved,
    nothing_to_send,
    rfc3339,
    secret_problems,
    truncate,
)
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult
from floe_monitoring_defs.models import ViolationSeverity
from floe_monitoring_defs.models.context import CONTEXT_KEY

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
FALLBACK_TEXT_MAX = 3000  # Slack truncates `text` at 40,000; a notification needs far less
BLOCKS_TEXT_BUDGET = 12_000  # stay under the ~13k characters where Slack answers msg_blocks_too_long
MIN_ITEM_TEXT = 120  # an item section shorter than this says too little: show "+N more" instead
_FIXED_BLOCKS = 3  # header, summary fields, context

EMOJI = {
    ViolationSeverity.INFO: "ℹ️",  # noqa: RUF001 - the information emoji
    ViolationSeverity.WARNING: "⚠️",
    ViolationSeverity.ERROR: "❌",
    ViolationSeverity.CRITICAL: "🚨",
}
RESOLVED_EMOJI = "✅"


class SlackConfig(ChannelConfig):
    """`alerts.channels.<name>` of `type: slack`; the webhook URL comes from `webhook_url_env` only."""


def escape(text: str) -> str:
    """Slack mrkdwn escaping: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate_mrkdwn(text: str, limit: int) -> str:
    """Truncate escaped text without leaving half an entity (`&am…`) before the ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _item_text(item: AlertItem, force_resolved: bool, with_context: bool = True) -> str:
    ev = item.event
    if is_resolved(item, force_resolved):
        title = f"{RESOLVED_EMOJI} *{escape(ev.violation_type.value)}* resolved"
    elif item.kind is AlertKind.OPERATIONAL:
        title = f"{EMOJI[ev.severity]} *monitoring failure* ({ev.severity.value.upper()})"
    else:
        title = f"{EMOJI[ev.severity]} *{escape(ev.violation_type.value)}* ({ev.severity.value.upper()})"
    lines = [title, escape(ev.message)]
    facts = [
        f"*{label}:* {escape(value)}"
        for label, value in (("Element", ev.element), ("Expected", ev.expected_value), ("Actual", ev.actual_value))
        if value
    ]
    if facts:
        lines.append("   ".join(facts))
    if with_context:  # root cause (FR-047), cut with the section by the fair share below
        lines += [f"> {escape(line)}" for line in context_summary(item, force_resolved)]
    return "\n".join(lines)


def header_text(batch: AlertBatch, force_resolved: bool = False) -> str:
    if all(is_resolved(i, force_resolved) for i in batch.items):
        return truncate(f"{RESOLVED_EMOJI} Resolved: {batch.contract_name}", HEADER_MAX)
    open_items = [i for i in batch.items if not is_resolved(i, force_resolved)]
    severity = max((i.event.severity for i in open_items), key=lambda s: s.rank)
    what = "Monitoring failure" if all(i.kind is AlertKind.OPERATIONAL for i in open_items) else "Contract violation"
    return truncate(f"{EMOJI[severity]} {what}: {batch.contract_name} ({severity.value.upper()})", HEADER_MAX)


def _fair_cap(lengths: list[int], budget: int) -> int:
    """The largest per-section length such that short sections keep their text, long ones share the rest."""
    if sum(min(n, SECTION_TEXT_MAX) for n in lengths) <= budget:
        return SECTION_TEXT_MAX
    low, high = MIN_ITEM_TEXT, SECTION_TEXT_MAX
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def build_message(batch: AlertBatch, force_resolved: bool = False) -> dict[str, Any]:
    """The webhook body {"text", "blocks"} for a non-empty batch, within Slack's limits.

    Items are shown most severe first; when not all fit, the last section says "+N more".
    """
    items = sorted(batch.items, key=lambda i: (is_resolved(i, force_resolved), -i.event.severity.rank))
    header = header_text(batch, force_resolved)
    types = sorted({i.event.violation_type.value for i in items})
    fields = [
        ("Contract", batch.contract_name),
        ("Version", batch.contract_version),
        ("Severity", batch.max_severity.value.upper()),
        ("Types", ", ".join(types)),
        ("Alerts", str(len(items))),
    ][:FIELDS_MAX]
    consumers = sorted({c for i in items for c in i.event.affected_consumers} | set(batch.affected_consumers))
    latest = max(i.event.timestamp for i in items)
    when = "Resolved at" if all(is_resolved(i, force_resolved) for i in items) else "Detected at"
    context_texts = [
        f"*Affected consumers:* {escape(', '.join(consumers)) if consumers else 'none recorded'}",
        f"{when} {rfc3339(latest)}",
    ]

    field_texts = [truncate_mrkdwn(f"*{label}:*\n{escape(value)}", FIELD_TEXT_MAX) for label, value in fields]
    context_texts = [truncate_mrkdwn(t, CONTEXT_TEXT_MAX) for t in context_texts]
    head_blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": [_mrkdwn(t) for t in field_texts]},
    ]
    context = {"type": "context", "elements": [_mrkdwn(t) for t in context_texts]}

    fixed_chars = len(header) + sum(map(len, field_texts)) + sum(map(len, context_texts))
    budget = max(BLOCKS_TEXT_BUDGET - fixed_chars, MIN_ITEM_TEXT)
    slots = MAX_BLOCKS - _FIXED_BLOCKS
    shown = len(items) if len(items) <= slots else slots - 1  # keep one slot for "+N more"
    more_reserve = 60
    if shown < len(items) or shown * MIN_ITEM_TEXT > budget:
        budget -= more_reserve
        shown = min(shown, max(budget // MIN_ITEM_TEXT, 1), slots - 1)

    # The violations of one check share its context: shown once, under the first (most severe) of them.
    seen: set[str] = set()
    texts = []
    for item in items[:shown]:
        key = item.event.metadata.get(CONTEXT_KEY, "")
        texts.append(_item_text(item, force_resolved, with_context=key not in seen))
        seen.add(key)
    cap = _fair_cap([len(t) for t in texts], budget)
    item_blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(truncate_mrkdwn(t, cap))} for t in texts]
    hidden = len(items) - shown
    if hidden > 0:
        hidden_types = sorted({i.event.violation_type.value for i in items[shown:]})
        more = f"*+{hidden} more* alert{'s' if hidden != 1 else ''} not shown ({', '.join(hidden_types)})"
        item_blocks.append({"type": "section", "text": _mrkdwn(truncate_mrkdwn(more, SECTION_TEXT_MAX))})

    first = escape(items[0].event.message)  # the most severe
    fallback = truncate_mrkdwn(
        f"{escape(header)}: {len(items)} alert{'s' if len(items) != 1 else ''}. {first}", FALLBACK_TEXT_MAX
    )
    return {"text": fallback, "blocks": [*head_blocks, *item_blocks, context]}


class SlackChannel(PooledHttpChannel):
    """Posts one Block Kit message per batch to a Slack incoming webhook."""

    action: ClassVar[str] = "sending to Slack"
    type_name: ClassVar[str] = "slack"
    Config: ClassVar[type[ChannelConfig]] = SlackConfig

    def validate_config(self) -> list[str]:
        problems = secret_problems(self.secrets, required=["webhook_url"], channel_type=self.type_name)
        url = self.secrets.get("webhook_url")
        if url is not None and http_url_problem("webhook_url_env", url.get_secret_value()):
            problems.append("webhook_url_env: the variable's value is not an http:// or https:// URL")
        if self.config.timeout_seconds <= 0:
            problems.append("timeout_seconds: must be greater than 0")
        return problems

    def secret_values(self) -> list[str]:
        """The webhook URL, and also its path and query alone (each of them carries the token)."""
        values = super().secret_values()
        url = self.secrets.get("webhook_url")
        if url is not None:
            try:
                parts = urlsplit(url.get_secret_value())
            except ValueError:
                return values
            values += [part for part in (parts.path, parts.query) if len(part) >= 8]
        return values

    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        if not batch.items:
            return nothing_to_send()
        body = json.dumps(build_message(batch, force_resolved), ensure_ascii=False).encode("utf-8")
        url = self.secrets["webhook_url"].get_secret_value()
        started = time.perf_counter()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        result = http_post(self.http_client(), url, body, headers, self.redact)
        return DeliveryResult(
            ok=result.ok,
            status=result.status,
            error=result.error,
            retryable=result.retryable,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail={**result.detail, "delivered": str(len(batch.items) if result.ok else 0)},
        )
