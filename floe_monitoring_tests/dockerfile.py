"""The repository's Dockerfile read as data, so that tests replay what the image does (no Docker engine runs here).

A small reader for the instructions the Dockerfile uses: line continuations, comments, stages (`FROM ... AS`),
`ENV` in its `KEY=VALUE` form (with `$VAR` expansion from earlier ENVs), exec-form `CMD`, `COPY`, `RUN`, `USER`,
`WORKDIR`, `EXPOSE`. Anything it does not understand raises, so a Dockerfile change the tests cannot follow fails
loudly instead of being replayed wrong.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

KNOWN = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD", "ARG", "LABEL"}


@dataclass
class Stage:
    base: str
    name: str | None
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str, str | None]] = field(default_factory=list)  # (sources, destination, --from)
    runs: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    expose: list[int] = field(default_factory=list)
    cmd: list[str] | None = None


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments and blank lines dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        if word.upper() not in KNOWN:
            raise ValueError(f"Dockerfile instruction {word!r} is not one the tests know how to replay")
        out.append((word.upper(), rest.strip()))
    if pending:
        raise ValueError("Dockerfile ends inside a continued instruction")
    return out


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for word, args in instructions(path.read_text(encoding="utf-8")):
        if word == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            if len(parts) not in (1, 3):
                raise ValueError(f"FROM {args!r}: not `FROM image [AS name]`")
            stages.append(Stage(base=parts[0], name=name))
            continue
        stage = stages[-1]
        if word == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"ENV {args!r}: only the KEY=VALUE form is understood")
                stage.env[key] = _expand(value, stage.env)
        elif word == "COPY":
            parts = shlex.split(args)
            source_stage = None
            while parts and parts[0].startswith("--"):
                flag = parts.pop(0)
                if flag.startswith("--from="):
                    source_stage = flag.split("=", 1)[1]
                else:
                    raise ValueError(f"COPY flag {flag!r} is not understood")
            stage.copies.append((parts[:-1], parts[-1], source_stage))
        elif word == "RUN":
            stage.runs.append(args)
        elif word == "USER":
            stage.user = args
        elif word == "WORKDIR":
            stage.workdir = args
        elif word == "EXPOSE":
            stage.expose.extend(int(p.split("/")[0]) for p in args.split())
        elif word == "CMD":
            value = json.loads(args)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ValueError("CMD must be the exec form (a JSON list of strings)")
            stage.cmd = value
    return stages


def final_stage(path: Path = DOCKERFILE) -> Stage:
    return parse(path)[-1]


def dockerignore_allows(relative: str, path: Path = DOCKERIGNORE) -> bool:
    """Whether the build context keeps `relative` (a path as the Dockerfile's COPY names it), for the allowlist
    form `.dockerignore` uses: `*` first, then `!path` entries, then exclusions of caches."""
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]
    if not lines or lines[0] != "*":
        raise ValueError(".dockerignore is expected to start with `*` (an allowlist)")
    allowed = [x[1:].rstrip("/") for x in lines[1:] if x.startswith("!")]
    wanted = relative.rstrip("/")
    return any(wanted == a or wanted.startswith(a + "/") for a in allowed)


def dockerignore_excluded_names(path: Path = DOCKERIGNORE) -> list[str]:
    """The file and directory name patterns excluded everywhere (`**/<pattern>`)."""
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]
    return [x[3:] for x in lines if x.startswith("**/")]
