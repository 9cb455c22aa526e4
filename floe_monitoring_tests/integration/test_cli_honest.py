"""The `floe` CLI tells the truth about where it looked: ./.env read as `dagster` reads it, no contracts is a
failure naming the directory, and commands that only read the store never create one."""

import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from floe_monitoring_defs.cli import cli
from floe_monitoring_tests.integration.test_dagster_location import contract_doc

pytestmark = pytest.mark.integration


def test_checks_run_without_contracts_fails_naming_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(empty))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(cli, ["checks", "run"])
    assert res.exit_code == 1
    assert f"no contracts found under {empty}" in res.output
    assert "Traceback" not in res.output


def test_checks_run_in_an_empty_working_directory_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # FLOE_CONTRACTS_DIR unset: the default ./contracts, which is not there
    res = CliRunner().invoke(cli, ["checks", "run"])
    assert res.exit_code == 1
    assert f"no contracts found under {tmp_path / 'contracts'}" in res.output


@pytest.mark.parametrize(
    "args",
    [["sla", "report"], ["sla", "report", "--contract", "orders", "--format", "json"], ["db", "cleanup"]],
)
def test_reading_a_missing_sqlite_store_fails_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    db = tmp_path / "stores" / "floe.db"
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{db}")
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert f"no monitoring store at sqlite:///{db}" in res.output
    assert not db.exists() and not db.parent.exists()


def test_without_dagster_home_the_default_store_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["sla", "report"])
    assert res.exit_code == 1
    assert f"no monitoring store at sqlite:///{tmp_path / '.floe' / 'floe_monitoring.db'}" in res.output
    assert not (tmp_path / ".floe").exists()
    res = CliRunner().invoke(cli, ["contracts", "deregister", "orders"])
    assert res.exit_code == 1 and "no monitoring store at" in res.output
    assert list(tmp_path.iterdir()) == []


def test_an_empty_store_is_not_migrated_by_a_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{db}")
    res = CliRunner().invoke(cli, ["sla", "report"])
    assert res.exit_code == 1 and "holds no floe tables: run `floe db upgrade`" in res.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []


def test_floe_reads_the_dotenv_of_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contracts = tmp_path / "team_contracts"
    contracts.mkdir()
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")), encoding="utf-8")
    work = tmp_path / "project"
    work.mkdir()
    # Dagster's rule: .env overrides the environment.
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(tmp_path / "elsewhere"))
    (work / ".env").write_text(f"# a comment\nFLOE_CONTRACTS_DIR={contracts}\n", encoding="utf-8")
    monkeypatch.chdir(work)
    res = CliRunner().invoke(cli, ["contracts", "list"])
    assert res.exit_code == 0, res.output
    assert "orders" in res.output and str(contracts / "orders.yaml") in res.output
    assert "elsewhere" not in res.output


def test_an_unreadable_dotenv_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_bytes(b"FLOE_CONTRACTS_DIR=\xff\xfe\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["contracts", "list"])
    assert res.exit_code == 1
    assert f"cannot read {tmp_path / '.env'}" in res.output and "Traceback" not in res.output


def test_help_says_dotenv_is_read() -> None:
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0 and "reads the file .env in the working directory" in " ".join(res.output.split())


def test_a_malformed_setting_is_one_line_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(tmp_path))
    monkeypatch.setenv("FLOE_SERVER_CATALOGS", "glue")
    res = CliRunner().invoke(cli, ["contracts", "validate"])
    assert res.exit_code == 1
    assert "FLOE_SERVER_CATALOGS" in res.output and "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)  # a clean exit, not an uncaught exception
