"""The run's trajectory: one JSON line per event under `.bimpl/runs/<id>/trajectory.jsonl`.

A whole step (the assistant message and all its tool results) is one line, written and fsynced after
the step completes, so a run killed mid-step resumes at the start of that step. Secret values from
the environment are replaced before anything reaches the disk.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend_implementor.agent.errors import UsageError
from backend_implementor.atomic import write_text_atomic
from backend_implementor.tools.env import is_secret

RUNS_DIR = Path(".bimpl") / "runs"
REDACTED = "[REDACTED]"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of the variables commands never see (tools.env), longest first so overlaps redact fully.

    Very short values are kept: redacting "1" or "yes" everywhere would garble the record, not protect it.
    """
    values = {v for k, v in environ.items() if is_secret(k, v) and len(v) >= 6}
    return sorted(values | {e for v in values for e in _encodings(v)}, key=len, reverse=True)


def _encodings(value: str) -> set[str]:
    """The value as a model that got hold of it might echo it: base64 and hex. A whole-group base64
    prefix (and the hex) is also found inside the encoding of the value plus a newline (`echo $KEY |
    base64`). Keys never reach commands (tools.env); this keeps an accident out of the record too."""
    raw = value.encode()
    if len(raw) < 12:
        return set()
    head = raw[: len(raw) // 3 * 3]
    return {
        base64.b64encode(head).decode(),
        base64.urlsafe_b64encode(head).decode(),
        raw.hex(),
        raw.hex().upper(),
    }


def redact(value: Any, secrets_: Iterable[str]) -> Any:
    secrets_ = list(secrets_)
    if not secrets_:
        return value
    if isinstance(value, str):
        for s in secrets_:
            value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets_) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets_) for v in value]
    return value


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class Trajectory:
    run_dir: Path
    secrets: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.run_dir / "trajectory.jsonl"

    @classmethod
    def create(cls, workspace: Path, environ: Mapping[str, str]) -> Trajectory:
        run_dir = workspace / RUNS_DIR / new_run_id()
        run_dir.mkdir(parents=True)
        return cls(run_dir, secret_values(environ))

    @classmethod
    def open(cls, workspace: Path, run_id: str, environ: Mapping[str, str]) -> Trajectory:
        if not re.fullmatch(r"[\w.-]+", run_id):
            raise UsageError(f"--resume: {run_id!r} is not a run id (see the folders in {RUNS_DIR})")
        run_dir = workspace / RUNS_DIR / run_id
        if not (run_dir / "trajectory.jsonl").is_file():
            known = sorted(p.parent.name for p in (workspace / RUNS_DIR).glob("*/trajectory.jsonl"))
            hint = f"; runs here: {', '.join(known[-5:])}" if known else ""
            raise UsageError(f"--resume: no run {run_id!r} in {workspace / RUNS_DIR}{hint}")
        return cls(run_dir, secret_values(environ))

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(redact(record, self.secrets), ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every complete record; a torn last line (the process died while writing it) is dropped."""
        out = []
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return out

    def write_json(self, name: str, data: Any) -> None:
        """Write a side file (summary, baseline) atomically."""
        text = json.dumps(redact(data, self.secrets), indent=2, ensure_ascii=False) + "\n"
        write_text_atomic(self.run_dir / name, text)
