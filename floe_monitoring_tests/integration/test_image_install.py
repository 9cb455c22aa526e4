"""The image, replayed without a Docker engine: the Dockerfile's install step (docker/install.sh, the one script
both use) into a fresh virtual environment from a build context holding exactly what the Dockerfile copies; then
the image's default command, with the image's environment (its paths moved under a temporary root), serving the
code location on loopback until `dagster api grpc-health-check` answers; then the location is loaded through that
server (`dagster definitions validate` / `dagster job list --grpc-port`), and the server stops on SIGTERM.

Why a fresh venv with the full install, not `--no-deps` into one that sees the CI venv's packages: the image's
risk is its dependency resolution (an unpinned set once resolved dagster-k8s 0.11.14, which fails on import), and
only a real resolution from the package index, with the same pip and the same `.[otel]`, exercises it. Measured
here: about 70 s for the install, 10-15 s for the server's start and the checks.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_tests.dockerfile import (
    REPO,
    Stage,
    dockerignore_allows,
    dockerignore_excluded_names,
    final_stage,
    parse,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INSTALL_SECONDS_MAX = 900  # safety bound of the install subprocess (pip against the package index)
START_SECONDS_MAX = 180  # safety bound while waiting for the health check; loading takes ~10 s here
STOP_SECONDS_MAX = 30
IMAGE_ROOTS = ("/etc/floe", "/opt/dagster", "/var/lib/floe")  # where the image keeps its inputs and state


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _build_stage() -> Stage:
    [build] = [s for s in parse() if s.name == "build"]
    return build


def test_the_dockerfile_installs_with_the_shared_script_and_ships_the_venv() -> None:
    build, final = _build_stage(), final_stage()
    assert build.base == final.base and final.base.startswith("python:3.11.") and final.base.endswith("-slim-bookworm")
    assert [shlex.split(r) for r in build.runs] == [["sh", "docker/install.sh", "/opt/floe/venv", "/src"]]
    assert (["/opt/floe/venv"], "/opt/floe/venv", "build") in final.copies
    assert final.env["PATH"].split(":")[0] == "/opt/floe/venv/bin"
    assert final.user == "10001:10001"  # numeric: runAsNonRoot can verify it
    assert final.cmd == ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "floe_monitoring_defs"]
    assert final.expose == [4000]
    for key, value in {
        "DAGSTER_HOME": "/opt/dagster/dagster_home",
        "FLOE_CONTRACTS_DIR": "/etc/floe/contracts",
        "FLOE_MONITORING_CONFIG": "/etc/floe/config/monitoring.yaml",
    }.items():
        assert final.env[key] == value
    # The `otel` extra the script installs exists and brings the exporters telemetry/setup.py imports.
    install = (REPO / "docker" / "install.sh").read_text()
    assert '"${src}[otel]"' in install
    # Every file the build copies is in the build context.
    for sources, _dest, _stage in build.copies:
        for source in sources:
            assert dockerignore_allows(source), source


def build_context(root: Path) -> Path:
    """What `docker build .` sends and the build stage copies: each COPY source under the stage's WORKDIR."""
    build = _build_stage()
    assert build.workdir == "/src"
    context = root / "src"
    context.mkdir()
    ignore = shutil.ignore_patterns(*dockerignore_excluded_names())
    for sources, dest, _stage in build.copies:
        for source in sources:
            src = REPO / source
            # COPY semantics: a directory's contents go into the destination; a file goes into a destination
            # ending in `/`, else becomes it.
            if src.is_dir():
                shutil.copytree(src, context / dest, ignore=ignore)
            else:
                target = context / dest / src.name if dest.endswith("/") else context / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    return context


def image_path(root: Path, path: str) -> str:
    """An absolute path of the image, moved under `root` (only the image's own roots are moved)."""
    if path.startswith(IMAGE_ROOTS):
        return str(root / path.lstrip("/"))
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The image's venv: docker/install.sh run as the build stage's RUN does, with the stage's ENV."""
    root = tmp_path_factory.mktemp("image")
    context = build_context(root)
    build = _build_stage()
    [run] = [shlex.split(r) for r in build.runs]
    venv = root / run[2].lstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DAGSTER_"))} | build.env
    started = time.monotonic()
    proc = subprocess.run(
        [run[0], str(context / run[1]), str(venv), str(context)],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS_MAX,
        check=False,
    )
    print(f"docker/install.sh into a fresh venv: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "No broken requirements found" in proc.stdout
    yield venv


def runtime_env(root: Path, venv: Path) -> dict[str, str]:
    """The final stage's ENV with the image's paths under `root` and its venv replaced by `venv`; nothing else of
    this machine's environment but a PATH for system tools and a HOME."""
    final = final_stage()
    env = {k: image_path(root, v) for k, v in final.env.items()}
    env["PATH"] = (
        ":".join(str(venv / "bin") if p == "/opt/floe/venv/bin" else p for p in final.env["PATH"].split(":"))
        + ":/usr/bin:/bin"
    )
    env["HOME"] = str(root / "home")
    return env


def test_the_image_install_serves_the_code_location(installed: Path, tmp_path: Path) -> None:
    final = final_stage()
    env = runtime_env(tmp_path, installed)
    # What the final stage's RUN creates, and a contract mounted into the contracts directory.
    for key in ("DAGSTER_HOME", "FLOE_CONTRACTS_DIR", "FLOE_SPOOL_DIR"):
        Path(env[key]).mkdir(parents=True)
    config = Path(env["FLOE_MONITORING_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text("# spec defaults\n")
    Path(env["HOME"]).mkdir()
    shutil.copy(REPO / "examples" / "contracts" / "orders.yaml", env["FLOE_CONTRACTS_DIR"])
    workdir = Path(image_path(tmp_path, final.workdir or "/"))
    workdir.mkdir(parents=True, exist_ok=True)

    port = _free_port()
    assert final.cmd is not None
    cmd = list(final.cmd)
    cmd[cmd.index("-h") + 1] = "127.0.0.1"  # loopback only: nothing here listens beyond this machine
    cmd[cmd.index("-p") + 1] = str(port)
    dagster = str(installed / "bin" / "dagster")
    assert shutil.which(cmd[0], path=env["PATH"]) == dagster  # the image's PATH finds the image's dagster
    log = tmp_path / "code-server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [dagster, *cmd[1:]], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        started = time.monotonic()
        deadline = started + START_SECONDS_MAX
        healthy = False
        while time.monotonic() < deadline and server.poll() is None:
            check = subprocess.run(
                [dagster, "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if check.returncode == 0:
                healthy = True
                break
            time.sleep(0.5)
        assert healthy, f"no health check answer (server exit {server.poll()}):\n{log.read_text()[-4000:]}"
        print(f"code server healthy after {time.monotonic() - started:.1f} s")

        grpc = ["--grpc-host", "127.0.0.1", "--grpc-port", str(port)]
        validate = subprocess.run(
            [dagster, "definitions", "validate", *grpc],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert validate.returncode == 0, (validate.stdout + validate.stderr)[-4000:]
        jobs = subprocess.run(
            [dagster, "job", "list", *grpc], env=env, cwd=workdir, capture_output=True, text=True, timeout=180
        )
        assert jobs.returncode == 0, (jobs.stdout + jobs.stderr)[-4000:]
        names = {line.split(": ", 1)[1] for line in jobs.stdout.splitlines() if line.startswith("Job: ")}
        # The mounted contract was loaded by the image's install: its checks jobs exist beside the registry's.
        assert {REGISTRY_JOB, "freshness_every_15m_checks", "availability_every_5m_checks"} <= names
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_SECONDS_MAX)
            stopped = True
        except subprocess.TimeoutExpired:
            stopped = False
        try:
            os.killpg(server.pid, signal.SIGKILL)  # anything of ours left in its session (the gRPC child)
        except ProcessLookupError:
            pass
        server.wait()
    assert stopped, f"the code server did not stop on SIGTERM within {STOP_SECONDS_MAX} s"
