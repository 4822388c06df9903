"""The deliverables verify lists besides findings: endpoints, schema, middleware.

Endpoints come from the OpenAPI document when there is one (exact); everything read from source files
is a best-effort regex scan and says so in its `source` label, so a reader knows what to trust."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .openapi_doc import required_schemes

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
SKIP_DIRS = {"node_modules", ".git", "dist", "build", "coverage", ".bimpl", "test", "tests", "__tests__"}
SOURCE_EXTS = (".ts", ".js", ".mjs", ".cjs", ".mts", ".cts")
MAX_FILES = 400
MAX_FILE_BYTES = 400_000


def _source_files(root: Path, exts: tuple[str, ...] = SOURCE_EXTS) -> list[Path]:
    out: list[Path] = []
    stack = [root]
    while stack and len(out) < MAX_FILES:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_symlink():
                continue
            if p.is_dir():
                if p.name not in SKIP_DIRS and not p.name.startswith("."):
                    stack.append(p)
            elif p.suffix in exts and not p.name.endswith(
                (".d.ts", ".test.ts", ".test.js", ".spec.ts", ".spec.js")
            ):
                out.append(p)
    return sorted(out)


def _read(p: Path) -> str:
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            return ""
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- endpoints


def _op_auth(doc: dict[str, Any], op: dict[str, Any]) -> str:
    names = required_schemes(doc, op)
    if names is None:
        schemes = (doc.get("components") or {}).get("securitySchemes") or doc.get("securityDefinitions")
        return "none" if schemes else "not declared"
    return f"required ({', '.join(names)})" if names else "none"


def endpoints_from_openapi(doc: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    paths = doc.get("paths") if isinstance(doc, dict) else None
    if not isinstance(paths, dict):
        return out
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                out.append(
                    {
                        "method": method.upper(),
                        "path": str(path),
                        "auth": _op_auth(doc, op),
                        "summary": str(op.get("summary") or op.get("operationId") or ""),
                    }
                )
    return out


_ROUTE_RE = re.compile(
    r"""\b(?:app|router|[A-Za-z_]\w*Router|r)\s*\.\s*(get|post|put|patch|delete)\s*\(\s*(['"`])([^'"`]+)\2"""
)


def endpoints_from_source(root: Path) -> list[dict[str, str]]:
    out, seen = [], set()
    for f in _source_files(root):
        for m in _ROUTE_RE.finditer(_read(f)):
            key = (m.group(1).upper(), m.group(3))
            if key not in seen:
                seen.add(key)
                out.append({"method": key[0], "path": key[1], "auth": "unknown", "summary": ""})
    return out


def endpoints(doc: dict[str, Any] | None, root: Path | None, spec_source: str = "") -> dict[str, Any]:
    if doc:
        return {
            "source": f"OpenAPI document ({spec_source})" if spec_source else "OpenAPI document",
            "items": endpoints_from_openapi(doc),
        }
    if root is not None:
        items = endpoints_from_source(root)
        return {
            "source": "source scan (best-effort regex over route calls; mounted prefixes not resolved)",
            "items": items,
        }
    return {"source": "unavailable (no OpenAPI document)", "items": []}


# ---------------------------------------------------------------- schema

_IDENT = r'[`"\[]?(\w+)[`"\]]?'
_CREATE_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:" + _IDENT + r"\.)?" + _IDENT + r"\s*\(", re.IGNORECASE
)
_CREATE_INDEX = re.compile(
    r"CREATE\s+(UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    + _IDENT
    + r"\s+ON\s+(?:ONLY\s+)?(?:"
    + _IDENT
    + r"\.)?"
    + _IDENT
    + r"(?:\s+USING\s+\w+)?\s*\(([^;]*?)\)\s*(?:;|$|WHERE)",
    re.IGNORECASE | re.MULTILINE,
)
_CONSTRAINT_WORDS = {"primary", "foreign", "unique", "constraint", "check", "key", "index"}


def _balanced(text: str, start: int, pair: str = "()") -> str:
    """The text inside the bracket (`pair`: opening and closing character) that opens at text[start - 1]."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {pair[0]: 1, pair[1]: -1}.get(text[i], 0)
        i += 1
    return text[start : i - 1]


def _split_top(body: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_sql(
    text: str, tables: dict[str, dict[str, Any]], indexes: list[dict[str, Any]], origin: str
) -> None:
    for m in _CREATE_TABLE.finditer(text):
        name = m.group(2)
        body = _balanced(text, m.end())
        cols, constraints = [], []
        for part in _split_top(body):
            cm = re.match(r'[`"\[]?(\w+)[`"\]]?\s*(.*)', part, re.DOTALL)
            if not cm:
                continue
            if cm.group(1).lower() in _CONSTRAINT_WORDS:
                constraints.append(" ".join(part.split())[:160])
            else:
                cols.append({"name": cm.group(1), "type": " ".join(cm.group(2).split())[:120]})
        tables.setdefault(
            name, {"name": name, "columns": cols, "constraints": constraints, "defined_in": origin}
        )
    for m in _CREATE_INDEX.finditer(text):
        indexes.append(
            {
                "name": m.group(2),
                "table": m.group(4),
                "columns": " ".join(m.group(5).split())[:160],
                "unique": bool(m.group(1)),
                "defined_in": origin,
            }
        )


_PGTABLE = re.compile(r"\b(?:pg|sqlite|mysql)Table\s*\(\s*['\"](\w+)['\"]\s*,\s*\{", re.MULTILINE)
_DRIZZLE_COL = re.compile(r"^\s*(\w+)\s*:\s*(\w+)\s*\(", re.MULTILINE)
_DRIZZLE_IDX = re.compile(r"\b(uniqueIndex|index)\s*\(\s*['\"](\w+)['\"]\s*\)\s*\.on\(([^)]*)\)")


def parse_drizzle_ts(
    text: str, tables: dict[str, dict[str, Any]], indexes: list[dict[str, Any]], origin: str
) -> None:
    for m in _PGTABLE.finditer(text):
        name = m.group(1)
        body = _balanced(text, m.end(), "{}")
        cols = [{"name": c.group(1), "type": c.group(2)} for c in _DRIZZLE_COL.finditer(body)]
        tables.setdefault(name, {"name": name, "columns": cols, "constraints": [], "defined_in": origin})
        tail = text[m.end() + len(body) : m.end() + len(body) + 2000]
        tail = tail.split("Table(", 1)[0]  # stop at the next table
        for im in _DRIZZLE_IDX.finditer(tail):
            indexes.append(
                {
                    "name": im.group(2),
                    "table": name,
                    "columns": " ".join(im.group(3).split()),
                    "unique": im.group(1) == "uniqueIndex",
                    "defined_in": origin,
                }
            )


def schema(root: Path | None) -> dict[str, Any]:
    """Tables, migrations and indexes. Prefers SQL migrations; falls back to drizzle schema files, then to
    CREATE TABLE statements embedded in source (one-file apps)."""
    empty = {"source": "unavailable (black-box run)", "tables": [], "indexes": [], "migrations": []}
    if root is None:
        return empty
    tables: dict[str, dict[str, Any]] = {}
    indexes: list[dict[str, Any]] = []
    migrations: list[str] = []
    sources = []
    for mig_dir in ("drizzle", "migrations", "db/migrations", "src/db/migrations", "prisma/migrations"):
        d = root / mig_dir
        if d.is_dir():
            files = sorted(p for p in d.rglob("*.sql") if "node_modules" not in p.parts)
            for f in files:
                rel = str(f.relative_to(root))
                migrations.append(rel)
                is_down = "down" in f.relative_to(d).parts[:-1] or f.name.endswith((".down.sql", "_down.sql"))
                if not is_down:
                    parse_sql(_read(f), tables, indexes, rel)
    if migrations:
        sources.append("SQL migrations (parsed: CREATE TABLE / CREATE INDEX; ALTERs not applied)")
    if not tables:
        for f in _source_files(root):
            text = _read(f)
            rel = str(f.relative_to(root))
            if _PGTABLE.search(text):
                parse_drizzle_ts(text, tables, indexes, rel)
            elif re.search(r"CREATE\s+TABLE", text, re.IGNORECASE):
                parse_sql(text, tables, indexes, rel)
        if tables:
            sources.append("source scan (best-effort: drizzle table definitions / SQL strings in code)")
    return {
        "source": "; ".join(sources)
        if sources
        else "none found (no migrations, drizzle schema or SQL in source)",
        "tables": list(tables.values()),
        "indexes": indexes,
        "migrations": migrations,
    }


# ---------------------------------------------------------------- middleware

_USE_RE = re.compile(r"\b(app|router)\s*\.\s*(use|disable|enable|set)\s*\(")


def _call_args(text: str, start: int) -> str:
    return " ".join(_balanced(text, start).split())


def middleware(root: Path | None, main: str | None) -> dict[str, Any]:
    """`app.use(...)` calls in the app's entry file, in source order (the order Express mounts them)."""
    if root is None:
        return {"source": "unavailable (black-box run)", "items": []}
    if not main:
        return {"source": "unavailable (no app entry file found)", "items": []}
    text = _read(root / main)
    items = []
    for m in _USE_RE.finditer(text):
        receiver, kind = m.group(1), m.group(2)
        if kind != "use" and receiver != "app":
            continue  # router.set/enable/disable configure nothing app-wide
        args = _call_args(text, m.end())
        line = text.count("\n", 0, m.start()) + 1
        mount = None
        am = re.match(r"""(['"`])([^'"`]*)\1\s*,\s*(.*)""", args, re.DOTALL) if kind == "use" else None
        if am:
            mount, args = am.group(2), am.group(3)
        call = f"{receiver}.{kind}"
        items.append(
            {"order": len(items) + 1, "call": call, "mount": mount, "handler": args[:160], "line": line}
        )
    return {"source": f"{main} (static scan of app.use/app.disable calls, in source order)", "items": items}
