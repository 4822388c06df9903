"""The definition's deliverables checklist, filled in from what the run actually changed.

Evidence comes from the changed files (by path and content), not only from the model's own claim in
`finish`; the two are reported side by side so a reader can tell them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from backend_implementor.agent.changes import FileChange

# A deliverable key is matched to a kind by its words; each kind knows which files count as evidence.
KINDS: dict[str, dict[str, str]] = {
    "endpoints": {
        "key": r"endpoint|api|route|graphql",
        "path": r"(^|/)(routes?|resources|controllers?|handlers?|api|routers?|graphql)(/|\.)|openapi",
        "content": r"\b(router|app)\.(get|post|put|patch|delete)\(|createYoga|ApolloServer",
    },
    "schemas": {
        "key": r"schema|database|migration|model|db",
        "path": r"(^|/)(migrations?|drizzle|db|models?|schema|prisma)(/|\.)|\.sql$",
        "content": r"\b(pgTable|sqliteTable|CREATE TABLE|createTable)\b",
    },
    "middleware": {
        "key": r"middleware|auth|security|validation",
        "path": r"(^|/)(middlewares?|auth)(/|\.)",
        "content": r"\(req(uest)?\s*(:[^,]+)?,\s*res(ponse)?\s*(:[^,]+)?,\s*next\b",
    },
    "tests": {
        "key": r"test|spec",
        "path": r"(^|/)(tests?|__tests__|spec)/|\.(test|spec)\.[cm]?[jt]sx?$",
        "content": r"(?<![\w.$])(describe|it|test)\s*\(",  # not a regex's .test(
    },
}


@dataclass
class DeliverableStatus:
    key: str
    description: str
    files: list[str] = field(default_factory=list)
    claim: str = ""  # what the model said in `finish`, if anything

    @property
    def produced(self) -> bool:
        return bool(self.files)


def _kind_for(key: str) -> dict[str, str] | None:
    for kind in KINDS.values():
        if re.search(kind["key"], key, re.I):
            return kind
    return None


def _matches(kind: dict[str, str] | None, key: str, change: FileChange, workspace: Path) -> int:
    """0: no evidence; 2: the path says it (strongest); 1: only the content does."""
    if kind is None:  # an unknown deliverable: match its words against the path
        words = [w for w in re.split(r"[^a-z0-9]+", key.lower()) if len(w) > 2]
        return 2 if any(w in change.path.lower() for w in words) else 0
    if re.search(kind["path"], change.path, re.I):
        return 2
    if change.status == "deleted":
        return 0
    try:
        text = (workspace / change.path).read_text("utf-8", errors="ignore")[:200_000]
    except OSError:
        return 0
    return 1 if re.search(kind["content"], text) else 0


def check(
    deliverables: dict[str, str], changes: list[FileChange], workspace: Path, claims: dict[str, str]
) -> list[DeliverableStatus]:
    result = []
    for key, description in deliverables.items():
        kind = _kind_for(key)
        scored = [(_matches(kind, key, c, workspace), c.path) for c in changes if c.status != "deleted"]
        # Files whose path says it first, then those matched only by their content.
        files = [path for score, path in sorted(scored, key=lambda sp: -sp[0]) if score]
        result.append(DeliverableStatus(key, description, files, str(claims.get(key, ""))))
    return result
