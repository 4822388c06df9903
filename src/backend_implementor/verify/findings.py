"""What a security probe or static check reports, shared by every verify stage and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low", "info"]


@dataclass
class Evidence:
    """The request that showed the problem and an excerpt of what came back (or a file location)."""

    request: str = ""  # e.g. "GET /books?title=' OR '1'='1" (headers that matter included, secrets not)
    response: str = ""  # status line + an excerpt of the body, at most ~500 characters
    location: str = ""  # "src/db.js:14" for static findings


@dataclass
class Finding:
    id: str  # stable probe/check id, e.g. "sqli-query"
    cwe: int  # e.g. 89
    title: str  # one line, e.g. "SQL injection in query parameter 'title'"
    severity: Severity
    fix: str  # one-line fix hint
    evidence: Evidence = field(default_factory=Evidence)
    stage: str = "security"  # "security" | "static" | "contract"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
