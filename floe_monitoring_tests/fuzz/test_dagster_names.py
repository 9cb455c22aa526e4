"""What validates, loads: the Dagster rules reproduced in `contracts/names.py` (and the SLA cron rule) agree with
Dagster itself, on generated names.

One direction is asserted everywhere: what floe accepts (or derives) Dagster accepts. floe may refuse more than
Dagster (a space in a table name), never less; the names floe refuses as reserved are ones Dagster refuses.
"""

from __future__ import annotations

import warnings

import dagster as dg
import pytest
from dagster._core.definitions.utils import is_valid_owner as dagster_is_valid_owner
from dagster._utils.schedules import is_valid_cron_string
from hypothesis import event, given
from hypothesis import strategies as st

from floe_monitoring_defs.checks.plan import cron_slug
from floe_monitoring_defs.contracts import names
from floe_monitoring_defs.contracts.sla import parse_sla

# Letters Dagster treats specially, and some it refuses.
NAME_ALPHABET = st.sampled_from([*"abcXYZ019_-.", " ", "/", "ü", ":", "@", "\n", "\t", "é", "$", "*"])
PART = st.one_of(
    st.text(NAME_ALPHABET, min_size=1, max_size=12),
    st.sampled_from(sorted(names.RESERVED_NAMES)),
    st.sampled_from(["floe", "contract_registry", "contract-registry", "contract_sla_daily", "input_arg", "dict"]),
)
KINDS = ("freshness", "schema_drift", "quality", "availability")


def location(keys: list[dg.AssetKey], **spec: object) -> dg.Definitions:
    """Asset specs and one multi-asset check per kind, as floe builds them (defs/assets.py, defs/checks.py)."""
    specs = [dg.AssetSpec(key=k, description="a contract's table", **spec) for k in keys]  # type: ignore[arg-type]
    checks = [
        dg.multi_asset_check(
            specs=[dg.AssetCheckSpec(name=kind, asset=k) for k in keys], name=f"{kind}_every_15m", can_subset=True
        )(lambda context: iter(()))  # unannotated: Dagster reads the annotation, and this module's are strings
        for kind in KINDS
    ]
    registry = dg.AssetSpec(key=dg.AssetKey(list(names.REGISTRY_ASSET_KEY)))
    sla = dg.asset(key=dg.AssetKey(list(names.SLA_ASSET_KEY)))(lambda: None)
    return dg.Definitions(assets=[*specs, registry, sla], asset_checks=checks)


def loads(defs_builder: object) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defs = defs_builder()  # type: ignore[operator]
            dg.Definitions.validate_loadable(defs)
    except dg.DagsterInvalidDefinitionError:
        return False
    return True


@given(parts=st.lists(PART, min_size=1, max_size=3))
def test_an_asset_key_floe_accepts_is_one_dagster_builds(parts: list[str]) -> None:
    accepted = names.asset_key_problem(parts) is None
    event(f"floe accepts the key: {accepted}")
    if accepted:
        assert loads(lambda: location([dg.AssetKey(parts)])), f"floe accepts {parts!r}, Dagster refuses it"


# `config` is refused as an op name but allowed as an input name (dagster `In`), and Dagster 1.13 builds no op for
# an external asset: it loads today; floe refuses it as the name of the op an observation would need.
@pytest.mark.parametrize("reserved", sorted(names.RESERVED_NAMES - {"config"}))
def test_a_key_floe_refuses_as_reserved_is_one_dagster_refuses(reserved: str) -> None:
    assert names.asset_key_problem([reserved]) is not None
    assert not loads(lambda: location([dg.AssetKey([reserved])]))


@pytest.mark.parametrize("own", [names.REGISTRY_ASSET_KEY, names.SLA_ASSET_KEY])
def test_the_monitors_own_assets_cannot_be_a_contracts_table(own: tuple[str, ...]) -> None:
    assert names.asset_key_problem(list(own)) is not None
    assert not loads(lambda: location([dg.AssetKey(list(own))]))


def test_keys_with_the_same_dagster_names_would_lose_a_check_so_they_clash() -> None:
    a, b = ["shop", "a-b"], ["shop", "a_b"]
    assert set(names.dagster_names(a)) & set(names.dagster_names(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = location([dg.AssetKey(a), dg.AssetKey(b)])
        checks = defs.resolve_asset_graph().asset_check_keys
    assert len([k for k in checks if k.name == "freshness"]) == 1  # Dagster kept one of the two: a lost check


ANY_TEXT = st.text(max_size=200)


@given(text=ANY_TEXT)
def test_tag_values_and_keys_floe_derives_are_strict_dagster_tags(text: str) -> None:
    value, key = names.tag_value(text), f"floe/tag.{names.tag_value(text)}"[:63]
    assert loads(lambda: dg.Definitions(assets=[dg.AssetSpec(key="k", tags={"floe/contract": value, key: ""})]))


@given(text=st.one_of(st.none(), ANY_TEXT))
def test_group_names_floe_derives_are_dagster_group_names(text: str | None) -> None:
    assert loads(lambda: dg.Definitions(assets=[dg.AssetSpec(key="k", group_name=names.group_name(text))]))


@given(text=st.one_of(ANY_TEXT, st.emails(), st.text(NAME_ALPHABET).map(lambda t: "team:" + t)))
def test_owners_floe_derives_are_dagster_owners(text: str) -> None:
    assert names.is_valid_owner(text) == dagster_is_valid_owner(text)
    owner = names.owner(text)
    if owner is not None:
        assert loads(lambda: dg.Definitions(assets=[dg.AssetSpec(key="k", owners=[owner])]))


CRON_FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 40).map(str),
    st.tuples(st.integers(0, 31), st.integers(0, 31)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.sampled_from(["*", "0", "1", "2", "1-5"]), st.integers(0, 70)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.lists(st.integers(0, 31).map(str), min_size=2, max_size=3).map(",".join),
    st.sampled_from(["\u0663", "MON", "?", "L", "²", "30", "31", "2"]),
)


@given(fields=st.lists(CRON_FIELD, min_size=4, max_size=6))
def test_a_cron_floe_schedules_a_check_on_is_one_dagster_schedules(fields: list[str]) -> None:
    cron = " ".join(fields)
    item = {"property": "latency", "value": "PT1H", "scheduler": "cron", "schedule": cron}
    reading = parse_sla([item], None, "c.yaml")
    event(f"floe schedules on it: {'freshness' in reading.schedules}")
    if "freshness" in reading.schedules:
        assert is_valid_cron_string(cron), f"floe schedules on {cron!r}, Dagster refuses it"
        job = f"freshness_cron_{cron_slug(cron)}_checks"
        schedule = dg.ScheduleDefinition(name=f"{job}_schedule", job_name=job, cron_schedule=cron)
        asset = dg.asset(key="t")(lambda: None)
        assert loads(
            lambda: dg.Definitions(
                assets=[asset], jobs=[dg.define_asset_job(job, selection=["t"])], schedules=[schedule]
            )
        )
    else:
        assert [n.field for n in reading.not_monitored] == ["slaProperties[0].schedule"]
