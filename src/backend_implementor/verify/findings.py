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


Outcome = Literal["found", "clean", "inconclusive"]


@dataclass
class ProbeResult:
    """What one security probe concluded: `found` (a finding), `clean` (it tested and found nothing; the
    detail says when there was nothing to test) or `inconclusive` (it could not test; the detail says why)."""

    id: str  # the probe's id, e.g. "idor"
    cwe: int
    outcome: Outcome
    detail: str = ""
    requests: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 3)
        return d
