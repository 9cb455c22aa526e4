"""ODCS `slaProperties` -> the SLAs floe monitors, and the ones it does not (with the reason).

ODCS (docs/service-level-agreement.md) names the properties case-insensitively, with synonyms:
`latency` (`ly`; floe also reads `freshness`), `frequency` (`fy`), `retention` (`re`), `timeOfAvailability`,
`endOfSupport` (`es`), `endOfLife` (`el`), `timeToDetect` (`td`), `timeToNotify` (`tn`), `timeToRepair`
(`tr`), `availability` (`av`), and three floe does not measure: `throughput` (`th`), `errorRate` (`er`),
`generalAvailability` (`ga`). Any other name is kept as a promise not monitored.

Values:

* durations (latency, frequency, retention, timeTo*): a number with a `unit` (`s`, `m`, `h`, `d`, `w`, `mo`,
  `y` and their long forms: `sec`, `minutes`, `hours`, `days`, `weeks`, `months`, `years`, ...) or an ISO-8601
  duration (`PT6H`, `P3Y`). A month counts 30 days and a year 365 (calendar lengths vary; these are the
  shortest common ones, so a promise is never read stricter than it was written by more than a day a year).
* timeOfAvailability: a time of day `HH:MM[:SS]`, optionally with `Z` or an offset (`09:00-08:00`); a time
  zone name may be given instead in `unit`, `valueExt` or a `timezone` custom property. A fixed offset is
  converted to the same instant in UTC (identical every day); a zone name is kept (its DST applies). UTC by
  default.
* endOfSupport / endOfLife: an ISO date or date-time (a date-time counts on its UTC date).
* availability: a percentage (`99.9%`, `99.9`).
* `element`: `table.column` or `column` (comma-separated for several); `slaDefaultElement` (v3.0) supplies it
  when a property has none.
* `scheduler: cron` + `schedule` sets the cadence of that property's check for this contract.

A value that cannot mean what the property means (a duration without a unit, `25:00`, `2032-13-45`, a
percentage of 120) is a load error naming `slaProperties[i].value`. A property floe does not measure, a
repeated one (the first one counts), or one without a value is a `NotMonitored` entry with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import isodate

from floe_monitoring_defs.cadence import parse_cron
from floe_monitoring_defs.contracts.errors import fail, shorten
from floe_monitoring_defs.contracts.model import (
    AvailabilitySLA,
    DeadlineSLA,
    FrequencySLA,
    FreshnessSLA,
    LifecycleSLA,
    NotMonitored,
    ResponseSLA,
    RetentionSLA,
)

# Canonical ODCS names (lower case) by every spelling accepted.
_SYNONYMS = {
    "latency": "latency",
    "ly": "latency",
    "freshness": "latency",
    "frequency": "frequency",
    "fy": "frequency",
    "retention": "retention",
    "re": "retention",
    "timeofavailability": "timeOfAvailability",
    "endofsupport": "endOfSupport",
    "es": "endOfSupport",
    "endoflife": "endOfLife",
    "el": "endOfLife",
    "timetodetect": "timeToDetect",
    "td": "timeToDetect",
    "timetonotify": "timeToNotify",
    "tn": "timeToNotify",
    "timetorepair": "timeToRepair",
    "tr": "timeToRepair",
    "availability": "availability",
    "av": "availability",
    "throughput": "throughput",
    "th": "throughput",
    "errorrate": "errorRate",
    "er": "errorRate",
    "generalavailability": "generalAvailability",
    "ga": "generalAvailability",
}
_NOT_MEASURED = {
    "throughput": "floe monitors tables, not the systems serving them: throughput is not measured",
    "errorRate": "floe monitors tables, not the systems serving them: the error rate is not measured",
    "generalAvailability": "the date the data became generally available is history, not a promise to check",
}
# The check kind whose cadence an SLA's `scheduler: cron` + `schedule` sets.
_CHECK_KIND = {
    "latency": "freshness",
    "frequency": "frequency",
    "retention": "retention",
    "timeOfAvailability": "time_of_availability",
    "endOfSupport": "deprecation",
    "endOfLife": "deprecation",
    "availability": "availability",
}
_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("mo", "mon", "month", "months"), 30 * 86400),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * 86400),
}
_UNIT_NAMES = "s, m, h, d, w, mo, y (or seconds, minutes, hours, days, weeks, months, years)"
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_PCT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")
_TIME_OF_DAY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{2}):?(\d{2})?$", re.I)
_TZ_KEYS = ("timezone", "timeZone", "tz", "floe.timezone")
# A cron becomes part of a Dagster job name (`<kind>_cron_<slug>`): ASCII digits and cron punctuation only.
_CRON_TEXT = re.compile(r"[0-9*/,\- \t]+")
_DAY = timedelta(hours=24)


@dataclass
class SlaReading:
    """What the `slaProperties` of one contract promise, in floe's terms."""

    freshness: FreshnessSLA | None = None
    availability: AvailabilitySLA | None = None
    frequency: FrequencySLA | None = None
    retention: RetentionSLA | None = None
    time_of_availability: DeadlineSLA | None = None
    lifecycle: LifecycleSLA | None = None
    response: ResponseSLA | None = None
    schedules: dict[str, str] = field(default_factory=dict)
    not_monitored: list[NotMonitored] = field(default_factory=list)
    # Where each monitored property's element was written (`slaProperties[0].element`, `slaDefaultElement`).
    element_fields: dict[str, str] = field(default_factory=dict)


def canonical_property(name: Any) -> str | None:
    """The ODCS name of an SLA property however it is spelled (`LY`, `Latency`), None when unknown."""
    return _SYNONYMS.get(str(name).strip().lower()) if isinstance(name, str) else None


def parse_duration(value: Any, unit: Any, source: str, where: str) -> timedelta:
    """A number + unit or an ISO-8601 duration, longer than zero; a load error naming `where` otherwise."""
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise fail(source, where, f"{value!r} is not a duration")
    number = value if isinstance(value, int | float) else None
    if isinstance(value, str) and _NUMBER.match(value) and unit:
        number = float(value)
    if number is not None:
        if not isinstance(unit, str) or unit.strip().lower() not in _SECONDS:
            raise fail(source, where, f"a number needs a unit (one of {_UNIT_NAMES}), got unit {shorten(unit)}")
        if number <= 0:
            raise fail(source, where, f"{shorten(value)} must be longer than zero")
        try:
            return timedelta(seconds=float(number) * _SECONDS[unit.strip().lower()])
        except (OverflowError, ValueError):
            raise fail(source, where, f"{shorten(value)} {unit} is longer than any duration floe can count") from None
    if isinstance(value, str):
        try:
            parsed = isodate.parse_duration(value.strip())
            if isinstance(parsed, isodate.Duration):  # years / months: calendar lengths (see the module docstring)
                parsed = timedelta(days=float(parsed.years) * 365 + float(parsed.months) * 30) + parsed.tdelta
        except OverflowError:
            raise fail(source, where, f"{shorten(value)} is longer than any duration floe can count") from None
        except (isodate.ISO8601Error, ValueError, ArithmeticError, TypeError):
            parsed = None
        if isinstance(parsed, timedelta):
            if parsed.total_seconds() <= 0:
                raise fail(source, where, f"{shorten(value)} must be longer than zero")
            return parsed
    raise fail(
        source,
        where,
        f"{shorten(value)} is not an ISO-8601 duration such as PT15M, PT6H or P1D, nor a number with a unit "
        f"({_UNIT_NAMES})",
    )


def _duration_text(value: Any, unit: Any) -> str:
    return str(value) + (
        f" {unit}" if unit and not (isinstance(value, str) and value.strip().upper().startswith("P")) else ""
    )


def parse_pct(value: Any, source: str, where: str) -> float:
    m = _PCT.match(str(value)) if value is not None and not isinstance(value, bool) else None
    pct = float(m.group(1)) if m else -1.0
    if not 0 < pct <= 100:
        raise fail(source, where, f"{shorten(value)} is not a percentage such as '99.9%'")
    return pct


def _offset(text: str) -> timedelta | None:
    m = _OFFSET.match(text.strip())
    if not m:
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    offset = (-1 if sign == "-" else 1) * timedelta(hours=hours, minutes=minutes)
    return offset if abs(offset) < _DAY and minutes < 60 else None  # what `datetime.timezone` accepts


def _looks_like_zone(text: str) -> bool:
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT") or "/" in t or _OFFSET.match(t) is not None:
        return True
    try:
        ZoneInfo(t)  # CET, EST, Japan, ...
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long to be a file name
        return False
    return True


def _zone(text: str, source: str, where: str) -> tuple[str | None, timedelta | None]:
    """(IANA zone name, None) or (None, fixed offset) for a time-zone value; a load error when it is neither."""
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT"):
        return None, timedelta(0)
    off = _offset(t)
    if off is not None:
        return None, off
    try:
        ZoneInfo(t)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise fail(
            source, where, f"{shorten(text)} is not a time zone (an IANA name such as Europe/Paris, or +02:00)"
        ) from None
    return t, None


def _custom(item: Mapping[str, Any]) -> dict[str, Any]:
    items = item.get("customProperties")
    if not isinstance(items, list):
        return {}
    return {
        c["property"]: c.get("value") for c in items if isinstance(c, Mapping) and isinstance(c.get("property"), str)
    }


def parse_time_of_availability(item: Mapping[str, Any], source: str, where: str) -> DeadlineSLA:
    value = item.get("value")
    m = _TIME_OF_DAY.match(value) if isinstance(value, str) else None
    if not m:
        raise fail(
            source, f"{where}.value", f"{shorten(value)} is not a time of day such as 09:00, 09:00Z or 09:00+02:00"
        )
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise fail(source, f"{where}.value", f"{shorten(value)} is not a time of day (hours 0-23, minutes 0-59)")
    at = time(hour, minute, second)
    zone_name: str | None = None
    offset: timedelta | None = None
    if m.group(4):
        offset = timedelta(0) if m.group(4) in ("Z", "z") else _offset(m.group(4))
        if offset is None:
            raise fail(source, f"{where}.value", f"{shorten(value)} has an offset beyond -23:59..+23:59")
    custom = _custom(item)
    # `unit` and `valueExt` name the zone only when they look like one (a unit such as `hh:mm` is a label).
    zone_given = [
        (f"{where}.{key}", item[key])
        for key in ("unit", "valueExt")
        if isinstance(item.get(key), str) and _looks_like_zone(item[key])
    ] + [(f"{where}.customProperties.{k}", custom[k]) for k in _TZ_KEYS if isinstance(custom.get(k), str)]
    text = str(value)
    if zone_given:
        zone_field, zone_text = zone_given[0]
        text = f"{value} {zone_text}"
        name, fixed = _zone(zone_text, source, zone_field)
        if offset is not None and (name is not None or fixed != offset):
            raise fail(
                source,
                zone_field,
                f"the value {value!r} has its own offset and {zone_text!r} names another time zone; give one",
            )
        zone_name = name
        if offset is None:
            offset = fixed
    if zone_name is not None:
        return DeadlineSLA(time_of_day=at, timezone=zone_name, text=text)
    if offset:
        # A fixed offset is the same instant every day: the UTC time of day says exactly the same.
        at = (datetime.combine(date(2000, 1, 3), at, tzinfo=timezone(offset)).astimezone(UTC)).time()
    return DeadlineSLA(time_of_day=at, timezone="UTC", text=text)


def parse_date(value: Any, source: str, where: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            return parsed.astimezone(UTC).date() if parsed.tzinfo else parsed.date()
        except (ValueError, OverflowError):  # OverflowError: an offset moving year 1 or 9999 out of range
            pass
    raise fail(source, where, f"{shorten(value)} is not a date such as 2032-05-12 (or 2032-05-12T09:30:00Z)")


def _schedule(
    item: Mapping[str, Any], what: str, kind: str | None, where: str, reading: SlaReading, source: str
) -> None:
    scheduler, schedule = item.get("scheduler"), item.get("schedule")
    if not schedule and not scheduler:
        return
    if scheduler and str(scheduler).strip().lower() != "cron":
        reading.not_monitored.append(
            NotMonitored(
                f"{where}.scheduler",
                f"schedule of slaProperty {what}",
                f"scheduler {shorten(scheduler)} is not cron: the check runs at its configured interval",
            )
        )
        return
    # A schedule says when to check, not what is promised: one floe cannot use is listed (the SLA itself is
    # still checked, at the kind's configured interval), never a reason to refuse the contract.
    label = f"schedule of slaProperty {what}"
    fallback = "the check runs at its configured interval"
    if not schedule:
        reason = f"`scheduler: cron` without a `schedule` (such as '0 6 * * *'): {fallback}"
        reading.not_monitored.append(NotMonitored(f"{where}.schedule", label, reason))
        return
    text = str(schedule)
    try:
        if _CRON_TEXT.fullmatch(text) is None:  # it becomes part of a Dagster job name
            raise ValueError(f"{shorten(text)} is not a 5-field cron of numbers, ranges, lists, * and steps")
        _, _, days, months, _ = parse_cron(text)
        if months == {2} and days <= {30, 31}:  # Dagster refuses a schedule that never fires
            raise ValueError(f"{text!r} never fires (February has no day {min(days)})")
    except ValueError as exc:
        reading.not_monitored.append(NotMonitored(f"{where}.schedule", label, f"{str(exc)[:300]}: {fallback}"))
        return
    if kind is None:
        reason = f"{what} is not checked on a schedule, so its schedule sets nothing"
        reading.not_monitored.append(NotMonitored(f"{where}.schedule", label, reason))
        return
    earlier = reading.schedules.get(kind)
    if earlier is not None and earlier != str(schedule):
        reason = f"the {kind} check already runs on {earlier!r}, given earlier in slaProperties"
        reading.not_monitored.append(NotMonitored(f"{where}.schedule", label, reason))
        return
    reading.schedules[kind] = str(schedule)


def parse_sla(items: Sequence[Any], default_element: str | None, source: str) -> SlaReading:
    """Every slaProperty: monitored, or a NotMonitored entry saying why; a load error for an invalid value."""
    reading = SlaReading()
    seen: dict[str, int] = {}
    lifecycle: dict[str, date] = {}
    response: dict[str, timedelta] = {}
    for i, item in enumerate(items):
        where = f"slaProperties[{i}]"
        if not isinstance(item, Mapping):
            continue  # the schema refused it already; the floe dialect's map entries are always mappings
        written = item.get("property")
        name = canonical_property(written)
        what = f"slaProperty {str(written)[:60]}"
        if name is None:
            reason = "not an SLA property of ODCS (see docs/service-level-agreement.md); floe does not check it"
            reading.not_monitored.append(NotMonitored(where, what, reason))
            continue
        if name in _NOT_MEASURED:
            reading.not_monitored.append(NotMonitored(where, what, _NOT_MEASURED[name]))
            continue
        if name in seen:
            earlier = items[seen[name]].get("property")
            reason = f"the same SLA is already given by slaProperties[{seen[name]}] ({earlier}); floe monitors that one"
            reading.not_monitored.append(NotMonitored(where, what, reason))
            continue
        value, unit = item.get("value"), item.get("unit")
        if value is None or value == "":
            reading.not_monitored.append(NotMonitored(where, what, "no value is given"))
            continue
        seen[name] = i
        vfield = f"{where}.value"
        own_element = item.get("element") if isinstance(item.get("element"), str) else None
        element = own_element or default_element
        reading.element_fields[name] = f"{where}.element" if own_element else "slaDefaultElement"
        if name == "latency":
            reading.freshness = FreshnessSLA(
                threshold=parse_duration(value, unit, source, vfield), text=_duration_text(value, unit), element=element
            )
        elif name == "frequency":
            reading.frequency = FrequencySLA(parse_duration(value, unit, source, vfield), _duration_text(value, unit))
        elif name == "retention":
            # One element is checked: the oldest value of one column says how far back the table reaches.
            elements = [e.strip() for e in str(element or "").split(",") if e.strip()]
            first, others = (elements[0] if elements else None), elements[1:]
            reading.retention = RetentionSLA(
                parse_duration(value, unit, source, vfield), _duration_text(value, unit), element=first
            )
            if others:
                reason = f"retention is checked on its first element ({first}) only"
                reading.not_monitored.append(
                    NotMonitored(f"{where}.element", f"retention of {', '.join(others)}", reason)
                )
        elif name == "timeOfAvailability":
            reading.time_of_availability = parse_time_of_availability(item, source, where)
        elif name in ("endOfSupport", "endOfLife"):
            lifecycle[name] = parse_date(value, source, vfield)
        elif name in ("timeToDetect", "timeToNotify", "timeToRepair"):
            response[name] = parse_duration(value, unit, source, vfield)
        elif name == "availability":
            reading.availability = AvailabilitySLA(parse_pct(value, source, vfield), str(value))
        _schedule(item, str(written), _CHECK_KIND.get(name), where, reading, source)
    if lifecycle:
        eos, eol = lifecycle.get("endOfSupport"), lifecycle.get("endOfLife")
        if eos and eol and eol < eos:
            where = f"slaProperties[{seen['endOfLife']}].value"
            raise fail(source, where, f"endOfLife {eol.isoformat()} is before endOfSupport {eos.isoformat()}")
        reading.lifecycle = LifecycleSLA(end_of_support=eos, end_of_life=eol)
    if response:
        reading.response = ResponseSLA(
            time_to_detect=response.get("timeToDetect"),
            time_to_notify=response.get("timeToNotify"),
            time_to_repair=response.get("timeToRepair"),
        )
    return reading
