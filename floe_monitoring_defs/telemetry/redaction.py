"""One redaction component for every secret the monitor holds, on every log record of the process.

**The registry** (`register_secret`): channels (and the store URL) register each secret value when they
load it. A secret is matched as it can appear, not only as configured:

- the exact text, its percent-encoded forms (`quote` with and without `/`, `quote_plus`, either hex case)
  and decoded forms, its JSON- and repr-escaped forms, and its base64 forms: the secret alone and the
  stable core of it inside a longer blob at each alignment (SMTP AUTH PLAIN/LOGIN lines, Basic auth);
- for a URL (`scheme://...`): the URL with any case of scheme and host, with or without the default port and
  a trailing slash, as httpx renders it (lower-case, percent-encoded path); its path and query (urllib3 logs
  the path alone); each path segment that looks like a token (digits or symbols and >= 8 characters, or
  >= 16 characters: Slack's `T.../B.../<token>` after `/services/`, never words like `services`); each
  query value of >= 6 characters; the password of its user info.

Secrets shorter than 4 characters are not masked (masking tiny strings would garble logs and protect
nothing). The registry never logs, and no error it raises quotes a secret.

**Where it applies** (`install_redaction`, idempotent, called when a secret is registered and when the code
location loads). Python applies a logger's filters only to records logged on that very logger, not to its
children's or to records propagated from elsewhere; and Dagster's `DagsterLogHandler` overrides
`Handler.filter`, so filters added to it are ignored, while `instance.get_handlers()` builds a new event-log
handler for every run. So the records are redacted where every one of them is made:

1. a wrapper around the log record factory (`logging.setLogRecordFactory`, chained to the previous one):
   every record of every logger, `context.log` (DagsterLogManager is a `Logger`) included, is redacted at
   creation, before any handler (console, Dagster's event log and compute logs, pytest's capture) sees it;
2. a `RedactingFilter` on the root logger's handlers, on the project's loggers (`floe_monitoring_defs` and
   every child created so far, `floe_monitoring`), the HTTP and SMTP libraries (`httpx`, `httpcore`,
   `urllib3`, `mail.log` of aiosmtpd), `dagster` and their handlers: for records built without the factory
   (`logging.makeLogRecord` with a message set afterwards) and for a factory replaced by other code.

A redacted record has its message formatted and masked (`args` dropped), its traceback text masked (the
exception object is dropped then, so no handler formats it again) and Dagster's `orig_message` masked.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit

import httpx

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter "secrets" are not masked
MIN_SEGMENT_LENGTH = 8  # a URL path segment is masked on its own from this length (if token-like)
LONG_SEGMENT_LENGTH = 16  # ... or from this length whatever its characters
MIN_QUERY_VALUE_LENGTH = 6
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "smtp": 25, "postgresql": 5432}

# Loggers whose records matter (the filter also goes on every existing child of these).
REDACTED_LOGGERS = (
    "floe_monitoring_defs",
    "floe_monitoring",
    "httpx",
    "httpcore",
    "urllib3",
    "mail.log",
    "dagster",
)


def _quote_forms(text: str) -> set[str]:
    forms = {text, quote(text, safe=""), quote(text, safe="/"), quote(text, safe="/:@!$&'()*+,;=~"), quote_plus(text)}
    forms |= {unquote(text), unquote_plus(text)}
    return forms


def _httpx_forms(text: str) -> set[str]:
    """`text` as httpx writes it in a URL's path and in its query (WHATWG percent-encode sets: `{` is encoded
    in a path, `|` and `^` nowhere), which is what httpx logs and what receivers see."""
    forms: set[str] = set()
    for prefix in ("http://h/", "http://h/?q="):
        try:
            raw = httpx.URL(prefix + text).raw_path.decode("ascii", "replace")
        except Exception:  # a text httpx refuses in a URL is not sent in one either
            continue
        forms.add(raw[len(prefix) - len("http://h") :])
    return forms


def _escaped_forms(text: str) -> set[str]:
    return {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], repr(text)[1:-1]}


def _base64_forms(text: str) -> set[str]:
    """The secret's base64 alone, and the part of its base64 that stays the same wherever it sits in a longer
    blob (one per byte alignment; the few characters at the edges also encode neighbouring bytes)."""
    raw = text.encode("utf-8")
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(raw).decode("ascii"))
        for offset in range(3):
            blob = encode(b"\0" * offset + raw).decode("ascii")
            start = -(-8 * offset // 6)  # the first character made of secret bits only
            end = (8 * (offset + len(raw))) // 6  # past the last one
            core = blob[start:end]
            if len(core) >= MIN_SEGMENT_LENGTH:
                forms.add(core)
    return forms


def _token_like(segment: str) -> bool:
    if len(segment) >= LONG_SEGMENT_LENGTH:
        return True
    return len(segment) >= MIN_SEGMENT_LENGTH and not segment.isalpha()


def _hex_insensitive(literal: str) -> str:
    """`literal` as a regex where each percent-escape matches either hex case (`%7C` and `%7c`)."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"%[0-9A-Fa-f]{2}", literal):
        out.append(re.escape(literal[pos : m.start()]))
        out.append("%" + "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in m.group()[1:]))
        pos = m.end()
    out.append(re.escape(literal[pos:]))
    return "".join(out)


def _url_parts(secret: str) -> tuple[list[str], list[str]]:
    """(literal parts, regexes) of a secret that is a URL; ([], []) for any other secret."""
    if "://" not in secret:
        return [], []
    try:
        parts = urlsplit(secret.strip())
        port = parts.port
    except ValueError:
        return [], []
    if not parts.scheme or not parts.hostname:
        return [], []
    literals: list[str] = []
    path, query = parts.path, parts.query
    paths = {path, path.rstrip("/"), path.rstrip("/") + "/"} if path not in ("", "/") else set()
    for p in list(paths):
        paths |= _quote_forms(p)
        try:  # httpx's rendering of the path (what it logs)
            paths.add(httpx.URL("http://h" + p).raw_path.decode("ascii", "replace").split("?")[0])
        except Exception:  # an odd path only loses this one extra form
            pass
    literals += [p for p in paths if len(p) >= MIN_SEGMENT_LENGTH]
    if query:
        literals.append(query)
        literals += [p + "?" + query for p in paths]
        literals += [v for _k, v in parse_qsl(query, keep_blank_values=True) if len(v) >= MIN_QUERY_VALUE_LENGTH]
        literals += [
            v for v in (unquote(x.partition("=")[2]) for x in query.split("&")) if len(v) >= MIN_QUERY_VALUE_LENGTH
        ]
    literals += [unquote(s) for s in path.split("/") if _token_like(unquote(s))]
    literals += [s for s in path.split("/") if _token_like(s)]
    if parts.password:
        literals += [parts.password, unquote(parts.password)]
    # The URL itself, whatever the case of scheme and host, with or without its default port.
    userinfo = parts.netloc.rpartition("@")[0]
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    port_re = f"(?::{default})?" if port is None or port == default else f":{port}"
    prefix = (
        f"(?i:{re.escape(parts.scheme)})://"
        + (re.escape(userinfo) + "@" if userinfo else "")
        + f"(?i:{re.escape(parts.hostname)}|\\[{re.escape(parts.hostname)}\\])"
        + port_re
    )
    path_re = "|".join(_hex_insensitive(p) for p in sorted(paths, key=len, reverse=True) if p)
    regexes = [prefix + (f"(?:{path_re})" if path_re else "/?")]
    return literals, regexes


def secret_forms(secret: str) -> tuple[set[str], list[str]]:
    """Every literal form of `secret` worth masking, and the regexes of its URL forms (see module docstring)."""
    url_literals, regexes = _url_parts(secret)
    literals: set[str] = set()
    for part in {secret, secret.strip(), *url_literals}:
        if len(part) < MIN_SECRET_LENGTH:
            continue
        for form in _quote_forms(part) | _httpx_forms(part) | _escaped_forms(part):
            literals.add(form)
        literals |= _base64_forms(part)
    return {f for f in literals if len(f) >= MIN_SECRET_LENGTH}, regexes


def _hex_variants(literal: str) -> set[str]:
    """`literal` with its percent-escapes in upper- and in lower-case hex (`%7C`, `%7c`)."""
    if "%" not in literal:
        return {literal}
    upper = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group().upper(), literal)
    lower = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group().lower(), literal)
    return {literal, upper, lower}


def _trie_pattern(literals: Iterable[str]) -> str:
    """One regex matching any of `literals`, the longest one at a position, built as a trie: at each position
    the engine follows one branch per character instead of trying every literal (hundreds of forms cost a
    few microseconds per log record, not a millisecond)."""
    trie: dict[str, Any] = {}
    for word in literals:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not ends else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return emit(trie)


class SecretRegistry:
    """The secrets of this process and one compiled pattern matching all their forms; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._literals: set[str] = set()
        self._regexes: list[str] = []
        self._urls: re.Pattern[str] | None = None
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> bool:
        """Remember `secret` (and its forms); True when it is new (False: known already, or too short to mask)."""
        if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LENGTH:
            return False
        with self._lock:
            if secret in self._secrets:
                return False
        literals, regexes = secret_forms(secret)
        with self._lock:
            self._secrets.add(secret)
            self._literals |= literals
            self._regexes += [r for r in regexes if r not in self._regexes]
            # URL forms first (they start at the scheme, before any literal inside them), then the literals as
            # one trie, which takes the longest form at a position: a secret is masked whole, not around a part.
            # Two passes, the first only when the text holds a URL: most records hold none.
            literals = {v for lit in self._literals for v in _hex_variants(lit)}
            self._urls = re.compile("|".join(self._regexes)) if self._regexes else None
            self._pattern = re.compile(_trie_pattern(literals)) if literals else None
        return True

    def __contains__(self, secret: object) -> bool:
        with self._lock:
            return secret in self._secrets

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """`text` with every form of every registered secret replaced by `***`."""
        pattern, urls = self._pattern, self._urls
        if pattern is None or not text:
            return text
        if urls is not None and "://" in text:
            text = _mask_urls(urls, text)
        return pattern.sub(MASK, text)

    def forms(self) -> set[str]:
        """The literal forms matched (for tests that look for leaks; never log them)."""
        with self._lock:
            return set(self._literals)


_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _mask_urls(urls: re.Pattern[str], text: str) -> str:
    """`text` with the secret URLs masked, trying `urls` only where a scheme ends in `://` (a regex search over
    the whole text would try every URL form at every position)."""
    out: list[str] = []
    pos = 0
    found = text.find("://")
    while found != -1:
        start = found
        while start > pos and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        hit = urls.match(text, start) if start < found else None
        if hit is not None:
            out += [text[pos:start], MASK]
            pos = hit.end()
        found = text.find("://", max(found + 3, pos))
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


REGISTRY = SecretRegistry()


def register_secret(value: str) -> None:
    """Remember a secret so that no log record, error text or stored message of this process shows it."""
    if REGISTRY.add(value):
        install_redaction()


def register_url_secrets(url: str | None) -> None:
    """Register the password of a URL's user info and its `password=` query values (a database URL)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    for value in [password, *(v for k, v in parse_qsl(parts.query) if k.lower() == "password")]:
        if value:
            register_secret(unquote(value))


def redact(text: str) -> str:
    """`text` with every registered secret masked."""
    return REGISTRY.redact(text)


def redact_all(texts: Iterable[str]) -> list[str]:
    return [REGISTRY.redact(t) for t in texts]


def redact_record(record: logging.LogRecord) -> None:
    """Mask the secrets of a record in place: message (args folded in), traceback, stack, Dagster's copy."""
    if not REGISTRY.active:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return
    masked = REGISTRY.redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        hidden = REGISTRY.redact(text)
        if hidden != text:  # no handler may format the exception itself again
            record.exc_text, record.exc_info = hidden, None
    elif record.exc_text:
        record.exc_text = REGISTRY.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = REGISTRY.redact(record.stack_info)
    meta = getattr(record, "dagster_meta", None)
    if isinstance(meta, dict) and isinstance(meta.get("orig_message"), str):
        meta["orig_message"] = REGISTRY.redact(meta["orig_message"])


class RedactingFilter(logging.Filter):
    """Masks registered secrets in every record it sees; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


FILTER = RedactingFilter()
_install_lock = threading.Lock()


def _wrap_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.floe_redaction = True  # type: ignore[attr-defined]  # marks our wrapper (see install_redaction)
    return factory


def _add_filter(target: logging.Filterer) -> None:
    if FILTER not in target.filters:
        target.addFilter(FILTER)


def install_redaction() -> None:
    """Put the redaction on the record factory and on the loggers and handlers that exist now (idempotent;
    call again after handlers were added, e.g. once a Dagster run has started)."""
    with _install_lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "floe_redaction", False):
            logging.setLogRecordFactory(_wrap_factory(current))
        root = logging.getLogger()
        _add_filter(root)
        for handler in root.handlers:
            _add_filter(handler)
        names = [
            name
            for name in list(logging.root.manager.loggerDict)
            if any(name == p or name.startswith(p + ".") for p in REDACTED_LOGGERS)
        ]
        for name in {*REDACTED_LOGGERS, *names}:
            logger = logging.getLogger(name)
            _add_filter(logger)
            for handler in logger.handlers:
                _add_filter(handler)
