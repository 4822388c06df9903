"""Static checks over a project's source: committed secrets (798), SQL built from strings (89), request data
reaching eval/new Function/vm (94) or a shell (78), CORS with any origin and credentials (942).

Implemented in Python (regex plus balanced-parenthesis scanning over comment-stripped source) rather than
semgrep: semgrep's wheel is ~70 MB and pins versions (mcp, click, opentelemetry...) that clash with this
package's dependencies, and these checks need no more than this."""

from __future__ import annotations

import os
from pathlib import Path

from ..findings import Evidence, Finding
from .rules import Hit, check_code
from .secrets_check import check_secrets

SKIP_DIRS = {
    "node_modules", "dist", "build", "out", "coverage", ".git", ".next", ".nuxt", ".turbo", ".cache",
    "vendor", "tests", "test", "__tests__", "__mocks__", "e2e", "fixtures", ".bimpl",
}  # fmt: skip
CODE_EXT = {".js", ".cjs", ".mjs", ".jsx", ".ts", ".cts", ".mts", ".tsx"}
CONFIG_EXT = {".json", ".yml", ".yaml", ".toml", ".ini", ".cfg", ".properties", ".sh", ".pem", ".key"}
SKIP_FILES = {"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb"}
MAX_BYTES = 1_000_000

__all__ = ["scan"]


def _files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            low = name.lower()
            if name in SKIP_FILES or low.endswith((".min.js", ".map", ".d.ts")):
                continue
            if any(part in low for part in (".test.", ".spec.")):
                continue
            yield path


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if path.suffix.lower() in CODE_EXT:
        return "code"
    if name == ".env" or (
        name.startswith(".env.") and not name.endswith((".example", ".sample", ".template"))
    ):
        return "env"
    if path.suffix.lower() in CONFIG_EXT:
        return "config"
    return None


def scan(project_dir: Path) -> list[Finding]:
    """Findings (stage "static") for every source and config file under project_dir."""
    root = Path(project_dir)
    findings: list[Finding] = []
    for path in _files(root):
        kind = _kind(path)
        if kind is None:
            continue
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            src = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        hits: list[Hit] = check_secrets(src, env_file=kind == "env")
        if kind == "code":
            hits += check_code(src)
        rel = path.relative_to(root).as_posix()
        for h in hits:
            findings.append(
                Finding(
                    id=h.id,
                    cwe=h.cwe,
                    title=h.title,
                    severity=h.severity,  # type: ignore[arg-type]
                    fix=h.fix,
                    evidence=Evidence(request=h.code, location=f"{rel}:{h.line}"),
                    stage="static",
                )
            )
    return findings
