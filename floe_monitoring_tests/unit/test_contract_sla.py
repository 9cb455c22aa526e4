"""Every ODCS slaProperty is monitored or visibly not monitored (issue 10, item 4: the parsing).

Names are case-insensitive with ODCS's synonyms; durations are a number with a unit or ISO-8601;
`timeOfAvailability` is a time of day (UTC unless the contract says otherwise); `endOfSupport` /
`endOfLife` are dates; an SLA's `scheduler: cron` + `schedule` sets its check's cadence. A value that cannot
mean what its property means is a load error naming `slaProperties[i].value`; what floe does not check is a
NotMonitored entry with the reason.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest

from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.contracts.loader import ContractLoadError
from floe_monitoring_defs.contracts.model import DeadlineSLA, NotMonitored


def contract(*sla: dict[str, Any], version: str = "v3.1.0", **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": version,
        "kind": "DataContract",
        "id": "urn:x:orders",
        "name": "orders",
        "version": "1.0.0",
        "status": "active",
        "servers": [
            {
                "server": "lake",
                "type": "iceberg",
                "catalog": "lake",
                "catalogUrl": "http://127.0.0.1:1",
                "namespace": "s",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string"},
                    {"name": "updated_at", "logicalType": "date"},
                ],
            },
            {"name": "lines", "properties": [{"name": "ts", "logicalType": "date"}]},
        ],
        "slaProperties": list(sla),
    }
    doc.update(top)
    return doc


def parsed(*sla: dict[str, Any], version: str = "v3.1.0", **top: Any) -> MonitoredContract:
    return parse_document(contract(*sla, version=version, **top), "c.yaml")


def load_error(*sla: dict[str, Any], version: str = "v3.1.0") -> ContractLoadError:
    with pytest.raises(ContractLoadError) as exc:
        parsed(*sla, version=version)
    return exc.value


@pytest.mark.parametrize("name", ["latency", "LATENCY", "Latency", "ly", "LY", "freshness", "Freshness"])
def test_latency_and_its_spellings_are_the_freshness_sla(name: str) -> None:
    c = parsed({"property": name, "value": 4, "unit": "d", "element": "orders.updated_at"})
    assert c.freshness is not None
    assert (c.freshness.threshold, c.freshness.text) == (timedelta(days=4), "4 d")
    assert {t.schema_name: t.freshness_column for t in c.tables} == {"orders": "updated_at", "lines": None}
    assert c.not_monitored == ()


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (4, "d", timedelta(days=4)),
        ("4", "days", timedelta(days=4)),
        (90, "minutes", timedelta(minutes=90)),
        (30, "s", timedelta(seconds=30)),
        (1.5, "h", timedelta(minutes=90)),
        (2, "weeks", timedelta(days=14)),
        ("PT30M", None, timedelta(minutes=30)),
        ("P1DT6H", None, timedelta(hours=30)),
        ("PT6H", "h", timedelta(hours=6)),  # an ISO duration carries its own unit
    ],
)
def test_latency_durations(value: Any, unit: str | None, expected: timedelta) -> None:
    item: dict[str, Any] = {"property": "latency", "value": value}
    if unit:
        item["unit"] = unit
    c = parsed(item)
    assert c.freshness is not None and c.freshness.threshold == expected


def test_elements_name_a_column_per_table() -> None:
    c = parsed({"property": "ly", "value": "PT1H", "element": "orders.updated_at, lines.ts"})
    assert {t.schema_name: t.freshness_column for t in c.tables} == {"orders": "updated_at", "lines": "ts"}


def test_sla_default_element_supplies_the_element_v30() -> None:
    c = parsed(
        {"property": "latency", "value": 1, "unit": "h"},
        {"property": "retention", "value": 30, "unit": "d", "element": "lines.ts"},
        version="v3.0.2",
        slaDefaultElement="orders.updated_at",
    )
    assert c.freshness is not None and c.freshness.element == "orders.updated_at"
    assert c.retention is not None and c.retention.element == "lines.ts"  # its own element wins


def test_frequency_and_retention() -> None:
    c = parsed(
        {"property": "fy", "value": 1, "valueExt": 1, "unit": "d", "element": "orders.updated_at"},
        {"property": "RE", "value": 3, "unit": "y", "element": "orders.updated_at"},
    )
    assert c.frequency is not None and (c.frequency.interval, c.frequency.text) == (timedelta(days=1), "1 d")
    assert c.retention is not None
    assert (c.retention.period, c.retention.element) == (timedelta(days=3 * 365), "orders.updated_at")


@pytest.mark.parametrize(("value", "days"), [("P3Y", 3 * 365), ("P13M", 13 * 30), ("P1Y2M10D", 365 + 60 + 10)])
def test_iso_years_and_months_count_365_and_30_days(value: str, days: int) -> None:
    c = parsed({"property": "retention", "value": value})
    assert c.retention is not None and c.retention.period == timedelta(days=days)


def test_retention_is_checked_on_its_first_element_and_says_so_for_the_others() -> None:
    c = parsed({"property": "retention", "value": 1, "unit": "y", "element": "orders.updated_at, lines.ts"})
    assert c.retention is not None and c.retention.element == "orders.updated_at"
    assert c.not_monitored == (
        NotMonitored(
            "slaProperties[0].element",
            "retention of lines.ts",
            "retention is checked on its first element (orders.updated_at) only",
        ),
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"value": "09:00"}, DeadlineSLA(time(9, 0), "UTC", "09:00")),
        ({"value": "9:05"}, DeadlineSLA(time(9, 5), "UTC", "9:05")),
        ({"value": "09:00:30Z"}, DeadlineSLA(time(9, 0, 30), "UTC", "09:00:30Z")),
        # a fixed offset is the same instant every day: kept as the UTC time of day
        ({"value": "09:00-08:00"}, DeadlineSLA(time(17, 0), "UTC", "09:00-08:00")),
        ({"value": "01:30+02:00"}, DeadlineSLA(time(23, 30), "UTC", "01:30+02:00")),
        ({"value": "06:00", "unit": "Europe/Paris"}, DeadlineSLA(time(6, 0), "Europe/Paris", "06:00 Europe/Paris")),
        (
            {"value": "06:00", "valueExt": "America/New_York"},
            DeadlineSLA(time(6), "America/New_York", "06:00 America/New_York"),
        ),
        ({"value": "06:00", "unit": "+05:30"}, DeadlineSLA(time(0, 30), "UTC", "06:00 +05:30")),
        ({"value": "06:00Z", "unit": "UTC"}, DeadlineSLA(time(6), "UTC", "06:00Z UTC")),
        ({"value": "06:00", "unit": "CET"}, DeadlineSLA(time(6), "CET", "06:00 CET")),
        ({"value": "06:00", "unit": "hh:mm"}, DeadlineSLA(time(6), "UTC", "06:00")),  # a label, not a zone
    ],
)
def test_time_of_availability(item: dict[str, Any], expected: DeadlineSLA) -> None:
    c = parsed({"property": "timeOfAvailability", **item})
    assert c.time_of_availability == expected


def test_time_of_availability_zone_from_custom_properties_v32() -> None:
    item = {
        "property": "timeofavailability",
        "value": "07:15",
        "customProperties": [{"property": "timezone", "value": "Asia/Tokyo"}],
    }
    c = parsed(item, version="v3.2.0")
    assert c.time_of_availability == DeadlineSLA(time(7, 15), "Asia/Tokyo", "07:15 Asia/Tokyo")


@pytest.mark.parametrize(
    ("item", "field", "fragment"),
    [
        ({"value": "25:00"}, "slaProperties[0].value", "hours 0-23"),
        ({"value": "9am"}, "slaProperties[0].value", "not a time of day"),
        ({"value": 9}, "slaProperties[0].value", "not a time of day"),
        ({"value": "09:00", "unit": "Mars/Olympus_Mons"}, "slaProperties[0].unit", "not a time zone"),
        ({"value": "09:00+01:00", "unit": "Europe/Paris"}, "slaProperties[0].unit", "give one"),
    ],
)
def test_time_of_availability_errors(item: dict[str, Any], field: str, fragment: str) -> None:
    err = load_error({"property": "timeOfAvailability", **item}).error
    assert err.field == field
    assert fragment in err.message


def test_end_of_support_and_end_of_life_are_dates() -> None:
    c = parsed(
        {"property": "es", "value": "2032-05-12"},
        {"property": "endOfLife", "value": "2042-05-12T21:30:00-08:00"},  # 2042-05-13 in UTC
    )
    assert c.lifecycle is not None
    assert (c.lifecycle.end_of_support, c.lifecycle.end_of_life) == (date(2032, 5, 12), date(2042, 5, 13))


def test_end_of_life_before_end_of_support_is_refused() -> None:
    err = load_error({"property": "endOfSupport", "value": "2030-01-01"}, {"property": "el", "value": "2029-01-01"})
    assert err.error.field == "slaProperties[1].value"
    assert "before endOfSupport 2030-01-01" in err.error.message


def test_response_promises() -> None:
    c = parsed(
        {"property": "td", "value": 15, "unit": "m"},
        {"property": "timeToNotify", "value": "PT5M"},
        {"property": "TR", "value": 1, "unit": "d"},
    )
    assert c.response is not None
    assert (c.response.time_to_detect, c.response.time_to_notify, c.response.time_to_repair) == (
        timedelta(minutes=15),
        timedelta(minutes=5),
        timedelta(days=1),
    )


def test_availability_and_its_synonym() -> None:
    c = parsed({"property": "av", "value": "99.95%"})
    assert c.availability is not None and c.availability.target_pct == pytest.approx(99.95)


def test_a_cron_schedule_sets_the_cadence_of_that_kind() -> None:
    c = parsed(
        {"property": "latency", "value": 4, "unit": "d", "scheduler": "cron", "schedule": "30 * * * *"},
        {"property": "endOfSupport", "value": "2032-01-01", "scheduler": "cron", "schedule": "0 6 * * 1"},
        {"property": "timeOfAvailability", "value": "09:00", "scheduler": "CRON", "schedule": "5 9 * * *"},
        {"property": "frequency", "value": 1, "unit": "d", "schedule": "0 */2 * * *"},  # no scheduler: cron
    )
    assert c.schedules == {
        "freshness": "30 * * * *",
        "deprecation": "0 6 * * 1",
        "time_of_availability": "5 9 * * *",
        "frequency": "0 */2 * * *",
    }


def test_a_schedule_that_is_not_cron_or_sets_nothing_is_reported() -> None:
    c = parsed(
        {"property": "latency", "value": "PT1H", "scheduler": "airflow", "schedule": "daily_dag"},
        {"property": "timeToDetect", "value": "PT1H", "scheduler": "cron", "schedule": "0 * * * *"},
    )
    assert c.freshness is not None and c.schedules == {}
    assert [(n.field, n.what) for n in c.not_monitored] == [
        ("slaProperties[0].scheduler", "schedule of slaProperty latency"),
        ("slaProperties[1].schedule", "schedule of slaProperty timeToDetect"),
    ]
    assert "'airflow' is not cron" in c.not_monitored[0].reason


def test_a_bad_cron_is_listed_and_the_sla_still_checked() -> None:
    # ODCS's own example writes `0 30 * * *` (hour 30): the promise stands, its schedule cannot be used.
    c = parsed(
        {"property": "latency", "value": "PT1H", "scheduler": "cron", "schedule": "every hour"},
        {"property": "frequency", "value": 1, "unit": "d", "scheduler": "cron", "schedule": "0 30 * * *"},
        {"property": "retention", "value": 1, "unit": "y", "scheduler": "cron"},
    )
    assert c.freshness is not None and c.frequency is not None and c.retention is not None
    assert c.schedules == {}
    fields = {n.field: n.reason for n in c.not_monitored}
    assert "5-field cron" in fields["slaProperties[0].schedule"]
    hour30 = fields["slaProperties[1].schedule"]
    assert "hour" in hour30 and "configured interval" in hour30
    assert "without a `schedule`" in fields["slaProperties[2].schedule"]


def test_two_lifecycle_dates_with_different_crons_keep_the_first_and_list_the_second() -> None:
    c = parsed(
        {"property": "endOfSupport", "value": "2030-01-01", "scheduler": "cron", "schedule": "0 6 * * *"},
        {"property": "endOfLife", "value": "2031-01-01", "scheduler": "cron", "schedule": "0 7 * * *"},
    )
    assert c.schedules == {"deprecation": "0 6 * * *"}
    [listed] = c.not_monitored
    assert listed.field == "slaProperties[1].schedule" and "'0 6 * * *'" in listed.reason


def test_what_floe_does_not_check_is_listed_with_the_reason() -> None:
    c = parsed(
        {"property": "latency", "value": "PT1H"},
        {"property": "generalAvailability", "value": "2022-05-12T09:30:10-08:00"},
        {"property": "th", "value": 100, "unit": "rows/s"},
        {"property": "errorRate", "value": 0.01},
        {"property": "completeness", "value": "99%"},
        {"property": "Freshness", "value": "PT2H"},
        {"property": "frequency", "value": None},
    )
    assert c.freshness is not None and c.freshness.threshold == timedelta(hours=1)
    assert [(n.field, n.what) for n in c.not_monitored] == [
        ("slaProperties[1]", "slaProperty generalAvailability"),
        ("slaProperties[2]", "slaProperty th"),
        ("slaProperties[3]", "slaProperty errorRate"),
        ("slaProperties[4]", "slaProperty completeness"),
        ("slaProperties[5]", "slaProperty Freshness"),
        ("slaProperties[6]", "slaProperty frequency"),
    ]
    reasons = [n.reason for n in c.not_monitored]
    assert "throughput is not measured" in reasons[1]
    assert "not an SLA property of ODCS" in reasons[3]
    assert reasons[4] == "the same SLA is already given by slaProperties[0] (latency); floe monitors that one"
    assert reasons[5] == "no value is given"
    assert c.frequency is None


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"property": "latency", "value": "6 hours"}, "not an ISO-8601 duration"),
        ({"property": "latency", "value": 4}, "needs a unit"),
        ({"property": "latency", "value": 4, "unit": "fortnights"}, "needs a unit"),
        ({"property": "frequency", "value": 0, "unit": "d"}, "longer than zero"),
        ({"property": "retention", "value": "PT0S"}, "longer than zero"),
        ({"property": "timeToRepair", "value": True}, "not a duration"),
        ({"property": "availability", "value": "120%"}, "not a percentage"),
        ({"property": "endOfLife", "value": "2032-13-45"}, "not a date"),
    ],
)
def test_an_invalid_value_is_a_load_error_naming_it(item: dict[str, Any], fragment: str) -> None:
    err = load_error(item)
    assert err.error.field == "slaProperties[0].value"
    assert fragment in err.error.message
    assert str(err).startswith("c.yaml: slaProperties[0].value: ")


def test_the_floe_dialect_map_carries_the_same_keys() -> None:
    doc = contract()
    doc["slaProperties"] = {
        "latency": {"value": 2, "unit": "h", "element": "updated_at", "scheduler": "cron", "schedule": "*/15 * * * *"},
        "timeOfAvailability": {"value": "08:00", "unit": "Europe/Berlin"},
    }
    c = parse_document(doc, "c.yaml")
    assert c.dialect == "floe"
    assert c.freshness is not None and c.freshness.threshold == timedelta(hours=2)
    assert c.schedules == {"freshness": "*/15 * * * *"}
    assert c.time_of_availability == DeadlineSLA(time(8), "Europe/Berlin", "08:00 Europe/Berlin")
