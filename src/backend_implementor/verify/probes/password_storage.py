"""Passwords stored in plain text or as an unsalted fast hash (CWE-522), when the database is reachable.

Registers a user with a unique password, then looks for the password itself or its unsalted
md5/sha1/sha256/sha512 (hex, either case, or base64) in the database:
- postgres://... : every text-like column of every table, read-only (psycopg);
- a SQLite file: every text column of every table;
- any other file or directory (e.g. a PGlite data directory): the raw bytes of its files."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path

from .base import Context, Exchange

ID = "password-storage"
CWE = 522
SECONDS = 15
MAX_REQUESTS = 4
RAW_SCAN_LIMIT = 512 * 1024 * 1024
ROW_LIMIT = 100_000  # values read per column


def needles(password: str) -> dict[str, str]:
    out = {"plain text": password}
    for name in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(name, password.encode())
        out[f"unsalted {name} (hex)"] = digest.hexdigest()
        out[f"unsalted {name} (HEX)"] = digest.hexdigest().upper()
        out[f"unsalted {name} (base64)"] = base64.b64encode(digest.digest()).decode()
    return out


def _match(text: str, wanted: dict[str, str]) -> str | None:
    for label, needle in wanted.items():
        if needle in text:
            return label
    return None


def scan_sqlite(path: Path, wanted: dict[str, str]) -> tuple[str, str] | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for row in con.execute(f"SELECT * FROM {quoted} LIMIT 100000"):  # identifiers quoted above
                for value in row:
                    if isinstance(value, str | bytes):
                        text = value if isinstance(value, str) else value.decode("latin-1")
                        label = _match(text, wanted)
                        if label:
                            return label, f"table {table}"
    finally:
        con.close()
    return None


def scan_postgres(url: str, wanted: dict[str, str]) -> tuple[str, str] | None:
    """Every text-like column of every table the URL's user can read (domains, enums, citext and arrays
    included), searched server-side; read-only and bounded by a statement timeout."""
    import psycopg  # optional dependency: psycopg[binary]
    from psycopg import sql

    # Autocommit, so one column that cannot be read (timeout, permission) does not abort the rest.
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as con, con.cursor() as cur:
        cur.execute("SET default_transaction_read_only = on")  # never writes to the app's database
        cur.execute("SET statement_timeout = '5s'")
        cur.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE t.table_type = 'BASE TABLE' "
            "AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND c.data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', "
            "'ARRAY', 'USER-DEFINED') "
            "ORDER BY c.table_schema, c.table_name, c.ordinal_position"
        )
        for schema, table, column in cur.fetchall():
            # The first ROW_LIMIT values of the column, kept only where one of the needles occurs.
            query = sql.SQL(
                "SELECT v FROM (SELECT {col}::text AS v FROM {sch}.{tbl} LIMIT {limit}) s "
                "WHERE EXISTS (SELECT 1 FROM unnest(%(needles)s::text[]) n WHERE strpos(v, n) > 0) LIMIT 1"
            ).format(
                col=sql.Identifier(column),
                sch=sql.Identifier(schema),
                tbl=sql.Identifier(table),
                limit=sql.Literal(ROW_LIMIT),
            )
            try:
                cur.execute(query, {"needles": list(wanted.values())})
                row = cur.fetchone()
            except psycopg.Error:
                continue
            if row is not None:
                label = _match(row[0] or "", wanted)
                if label:
                    return label, f"{schema}.{table}.{column}"
    return None


def scan_raw(root: Path, wanted: dict[str, str]) -> tuple[str, str] | None:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    encoded = {label: n.encode() for label, n in wanted.items()}
    budget = RAW_SCAN_LIMIT
    for f in files:
        try:
            size = f.stat().st_size
            if size > budget:
                continue
            budget -= size
            data = f.read_bytes()
        except OSError:
            continue
        for label, needle in encoded.items():
            if needle in data:
                return label, f"file {f.relative_to(root) if f != root else f.name}"
    return None


def scan(db_url: str, password: str) -> tuple[str, str] | None:
    wanted = needles(password)
    if db_url.startswith(("postgres://", "postgresql://")):
        return scan_postgres(db_url, wanted)
    path = Path(db_url.removeprefix("sqlite://").removeprefix("file:"))
    if path.is_file() and path.read_bytes()[:16] == b"SQLite format 3\x00":
        return scan_sqlite(path, wanted)
    if path.exists():
        return scan_raw(path, wanted)
    return None


def run(ctx: Context) -> None:
    if not ctx.target.db_url:
        ctx.skip("no database to read (an opt-in check: give --db-url)")
        return
    user = ctx.new_user()
    if user is None:
        return
    try:
        found = scan(ctx.target.db_url, user.password)
    except ImportError:
        ctx.progress("  password-storage: psycopg is not installed (pip install 'psycopg[binary]'); skipped")
        return
    if found:
        label, where = found
        ctx.add(
            ID,
            CWE,
            f"Password stored as {label} ({where})",
            "critical",
            "Hash passwords with a salted slow KDF: scrypt/argon2/bcrypt (e.g. crypto.scrypt with a random salt).",
            ctx.evidence(
                Exchange(
                    f"POST {ctx.auth.register_path if ctx.auth else ''} (password withheld), then read the database",
                    f"{where} holds the password as {label}",
                )
            ),
        )
