"""Passwords stored in plain text or as an unsalted fast hash (CWE-522), and other secrets stored in plain
text (CWE-312), when the database is reachable.

Registers a user with a unique password, then looks for the password itself or its unsalted
md5/sha1/sha256/sha512 (hex, either case, or base64) in the database. Other secrets: the values of
secret-named fields verify sends when creating resources (`secret`, `api_key`, `ssn`, `card_number`, ...),
secret-named values the API hands out (an API key shown once, a refresh token), looked for as given
(a hash of a random key is how such keys should be kept). Where it reads:
- postgres://... : every text-like column of every table, read-only (psycopg);
- a SQLite file: every text column of every table;
- any other file or directory (e.g. a PGlite data directory): the raw bytes of its files."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from pathlib import Path

from ..openapi_doc import example_value
from ..static.secrets_check import entropy
from .base import Context, Exchange, User, find_key, rand

ID = "password-storage"
CWE = 522
SECONDS = 25
MAX_REQUESTS = 40  # a user, then up to four creates, each with the parents it needs
SECRET_FIELD = re.compile(
    r"^(secret|secret_?value|value_?secret|api_?key|apikey|api_?token|access_?key|private_?key|token|"
    r"refresh_?token|totp(_?secret)?|otp_?secret|mfa_?secret|ssn|social_?security(_?number)?|card_?number|"
    r"credit_?card|cc_?number|cvv|cvc|iban|account_?number|pin|passphrase|credential|credentials|password)$",
    re.I,
)
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
    return scan_for(db_url, needles(password))


def scan_for(db_url: str, wanted: dict[str, str]) -> tuple[str, str] | None:
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
    _other_secrets(ctx, user)


def _other_secrets(ctx: Context, user: User) -> None:
    wanted: dict[str, str] = {}
    refresh = find_key(user.login_json, ("refresh_token", "refreshToken"))
    if isinstance(refresh, str) and len(refresh) >= 16:
        wanted["the refresh token from the login answer"] = refresh
    for kind in ctx.resource_kinds()[:4]:
        props = ctx.props_of(kind.create)
        body = ctx.example_body(kind.create)
        if not isinstance(body, dict):
            continue
        sent = {}
        for k, schema in props.items():
            if SECRET_FIELD.match(k) and schema.get("type") in (None, "string") and not schema.get("enum"):
                body[k] = sent[k] = _secret_like(ctx, k, schema)
        res = ctx.create(kind, user if kind.create.secured else None, body=body, required=False)
        if res is None:
            continue
        for k, v in sent.items():
            wanted[f"the '{k}' sent to {kind.create}"] = v
        handed = res.json if isinstance(res.json, dict) else {}
        for k, v in handed.items():
            if (SECRET_FIELD.match(k) or k.lower() == "key") and k not in sent and _random_looking(v):
                wanted[f"the '{k}' {kind.create} handed out"] = v
    if not wanted:
        return
    try:
        found = scan_for(ctx.target.db_url or "", wanted)
    except ImportError:
        return
    if found:
        label, where = found
        ctx.add(
            "secret-storage",
            312,
            f"Secret stored in plain text: {label} ({where})",
            "high",
            "Keep secrets the server only compares (API keys, tokens) as a SHA-256 of a random value; encrypt "
            "those it must give back (AES-256-GCM with a key from the environment).",
            ctx.evidence(Exchange(f"{label}, then read the database", f"{where} holds it as sent")),
        )


def _random_looking(value) -> bool:
    """A generated key or token (long, high entropy), not a name someone chose."""
    return (
        isinstance(value, str)
        and len(value) >= 16
        and entropy(value) >= 3.5
        and bool(re.search(r"\d", value))
    )


def _secret_like(ctx: Context, name: str, schema: dict) -> str:
    """A unique value a secret field's validator should accept: drawn from its pattern when it has one."""
    if schema.get("pattern") or schema.get("format"):
        return str(example_value(ctx.spec, schema, name))
    hi = schema.get("maxLength")
    value = f"bimplSecret{rand(12)}"
    return value[:hi] if isinstance(hi, int) and hi >= 8 else value
