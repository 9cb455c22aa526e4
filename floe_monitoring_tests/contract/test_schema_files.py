"""The vendored wire-format schemas are the upstream files, byte for byte (see schemas/README.md)."""

import hashlib

import pytest

from floe_monitoring_tests.alerting_receivers import SCHEMAS

PINNED = {
    "cloudevents-1.0.2.schema.json": "e28a6d252d7b7238d176618f6bbf6cde570b26a867bc5241563aed34c9dd1d83",
    "alertmanager-openapi-v0.25.0.yaml": "9cab89e8f7728ecd0b1d2399e4e07e06d90eee8f79f9096437e819cca9afd650",
    "pagerduty-events-v2-openapiv3.json": "f5570ec1049850501363447415a9202118586281286c3ccc8cd996f8429d1908",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_schema_file_is_the_upstream_copy(name: str) -> None:
    assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == PINNED[name]


def test_readme_names_every_schema_file_and_its_hash() -> None:
    readme = (SCHEMAS / "README.md").read_text()
    for name, digest in PINNED.items():
        assert name in readme and digest in readme
