"""The generated project's first migration, as drizzle-kit would write it for src/db/schema.ts.

One table model gives the SQL (`drizzle/0000_init.sql`, statements split by `--> statement-breakpoint`),
its down script (`drizzle/down/`, used by `npm run db:rollback`), the journal, and drizzle-kit's snapshot
(`drizzle/meta/0000_snapshot.json`). With the snapshot in place `drizzle-kit generate` diffs the next
schema.ts change against this one, so later migrations come from drizzle-kit itself.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from backend_implementor.generate.express.codegen import ResourceCode, js_number

# Fixed so output is reproducible; drizzle only needs journal timestamps to increase.
MIGRATION_WHEN = 1735689600000
MIGRATION_TAG = "0000_init"
BREAKPOINT = "\n--> statement-breakpoint\n"
# Snapshot ids only chain snapshots together (prevId); derive them from the content, not from chance.
_SNAPSHOT_NAMESPACE = uuid.UUID("6f1b8a52-3c1e-4f5e-9a57-2f3d6c0b9e41")


@dataclass
class Column:
    name: str
    type: str
    not_null: bool
    default_sql: str | None = None
    default_snapshot: Any = None  # drizzle-kit keeps numbers and booleans as JSON values
    primary_key: bool = False

    def sql(self) -> str:
        text = f'"{self.name}" {self.type}'
        if self.primary_key:
            text += " PRIMARY KEY"
        if self.default_sql is not None:
            text += f" DEFAULT {self.default_sql}"
        return text + (" NOT NULL" if self.not_null else "")


@dataclass
class ForeignKey:
    column: str
    ref_table: str
    on_delete: str

    def name(self, table: str) -> str:
        return f"{table}_{self.column}_{self.ref_table}_id_fk"


@dataclass
class Table:
    name: str
    columns: list[Column]
    unique: list[str] = field(default_factory=list)  # single-column unique constraints
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Key] = field(default_factory=list)  # btree indexes, by their columns in order

    # drizzle-kit's names, which the SQL and the snapshot must share.
    def unique_name(self, column: str) -> str:
        return constraint_name(self.name, (column,), "_unique")

    def index_name(self, columns: Key) -> str:
        return constraint_name(self.name, columns, "_idx")


Key = tuple[str, ...]  # the columns of an index, in order

PG_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)


def constraint_name(table: str, columns: Key, suffix: str) -> str:
    """<table>_<columns>_<suffix>, or, past PostgreSQL's 63 bytes (which it would cut silently, leaving the
    snapshot naming an index the database does not have), its start and a hash of the whole."""
    name = f"{table}_{'_'.join(columns)}{suffix}"
    if len(name.encode()) <= PG_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name.encode()[: PG_NAME_BYTES - len(suffix) - 9].decode(errors="ignore")
    return f"{head}_{digest}{suffix}"


def _id() -> Column:
    return Column("id", "uuid", True, "gen_random_uuid()", "gen_random_uuid()", primary_key=True)


def _timestamp(name: str, not_null: bool = True, default_now: bool = True) -> Column:
    now = "now()" if default_now else None
    return Column(name, "timestamp with time zone", not_null, now, now)


def tables(resources: list[ResourceCode], auth: bool, oidc: bool = False) -> list[Table]:
    """Every table in creation order (referenced tables first). With OIDC a user may have no password."""
    out: list[Table] = []
    if auth:
        out.append(
            Table(
                "users",
                [
                    _id(),
                    Column("email", "varchar(320)", True),
                    Column("password_hash", "text", not oidc),
                    Column("role", "text", True),
                    _timestamp("created_at"),
                    _timestamp("updated_at"),
                ],
                unique=["email"],
                indexes=[("created_at", "id")],
            )
        )
        out.append(
            Table(
                "refresh_tokens",
                [
                    _id(),
                    Column("user_id", "uuid", True),
                    Column("family_id", "uuid", True),
                    Column("token_hash", "text", True),
                    _timestamp("expires_at", default_now=False),
                    _timestamp("revoked_at", not_null=False, default_now=False),
                    _timestamp("created_at"),
                ],
                unique=["token_hash"],
                foreign_keys=[ForeignKey("user_id", "users", "cascade")],
                indexes=[("user_id",), ("family_id",)],
            )
        )
        out.append(
            Table(
                "auth_sessions",
                [
                    _id(),
                    Column("user_id", "uuid", True),
                    Column("kind", "text", True),
                    Column("token_hash", "text", False),
                    Column("user_agent", "text", False),
                    _timestamp("created_at"),
                    _timestamp("last_seen_at"),
                    _timestamp("expires_at", default_now=False),
                    _timestamp("revoked_at", not_null=False, default_now=False),
                ],
                unique=["token_hash"],
                foreign_keys=[ForeignKey("user_id", "users", "cascade")],
                indexes=[("user_id",)],
            )
        )
        if oidc:
            out.append(
                Table(
                    "user_identities",
                    [
                        Column("id", "text", True, primary_key=True),
                        Column("user_id", "uuid", True),
                        Column("provider", "text", True),
                        Column("subject", "text", True),
                        Column("email", "text", False),
                        _timestamp("created_at"),
                    ],
                    foreign_keys=[ForeignKey("user_id", "users", "cascade")],
                    indexes=[("user_id",)],
                )
            )
            out.append(
                Table(
                    "oidc_logins",
                    [
                        Column("state_hash", "text", True, primary_key=True),
                        Column("provider", "text", True),
                        Column("nonce", "text", True),
                        Column("code_verifier", "text", True),
                        Column("return_to", "text", False),
                        _timestamp("expires_at", default_now=False),
                        _timestamp("created_at"),
                    ],
                    indexes=[("expires_at",)],
                )
            )
        out.append(
            Table(
                "rate_limits",
                [
                    Column("key", "text", True, primary_key=True),
                    Column("hits", "integer", True),
                    _timestamp("reset_at", default_now=False),
                ],
            )
        )
    for r in resources:
        columns = [_id()]
        fks = []
        if r.owned:
            columns.append(Column("owner_id", "uuid", True))
            fks.append(ForeignKey("owner_id", "users", "cascade"))
        for f in r.fields:
            columns.append(Column(f.name, f.sql_type, not f.nullable, f.sql_default, f.snapshot_default))
            if f.ref_table:
                fks.append(ForeignKey(f.name, f.ref_table, f.on_delete or "restrict"))
        columns += [_timestamp("created_at"), _timestamp("updated_at")]
        out.append(Table(r.name, columns, [f.name for f in r.fields if f.unique], fks, list(r.indexes)))
    return out


def create_table_sql(t: Table) -> str:
    lines = [c.sql() for c in t.columns]
    lines += [f'CONSTRAINT "{t.unique_name(col)}" UNIQUE("{col}")' for col in t.unique]
    return f'CREATE TABLE "{t.name}" (\n' + ",\n".join("\t" + line for line in lines) + "\n);"


def add_fk_sql(t: Table, fk: ForeignKey) -> str:
    return (
        f'ALTER TABLE "{t.name}" ADD CONSTRAINT "{fk.name(t.name)}" FOREIGN KEY ("{fk.column}") '
        f'REFERENCES "public"."{fk.ref_table}"("id") ON DELETE {fk.on_delete} ON UPDATE no action;'
    )


def index_sql(table: str, name: str, columns: Key) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'CREATE INDEX "{name}" ON "{table}" USING btree ({cols});'


def create_index_sql(t: Table, columns: Key) -> str:
    return index_sql(t.name, t.index_name(columns), columns)


def join_statements(statements: list[str]) -> str:
    return BREAKPOINT.join(statements) + "\n"


def up_sql(model: list[Table]) -> str:
    creates = [create_table_sql(t) for t in model]
    fks = [add_fk_sql(t, fk) for t in model for fk in t.foreign_keys]
    indexes = [create_index_sql(t, col) for t in model for col in t.indexes]
    return join_statements(creates + fks + indexes)


def down_sql(model: list[Table]) -> str:
    return BREAKPOINT.join(f'DROP TABLE "{t.name}" CASCADE;' for t in reversed(model)) + "\n"


ROOT_SNAPSHOT_ID = "00000000-0000-0000-0000-000000000000"


def snapshot(model: list[Table], prev_id: str = ROOT_SNAPSHOT_ID) -> dict[str, Any]:
    """drizzle-kit's PostgreSQL snapshot (version 7) of the schema after a migration; `prev_id` chains it
    to the snapshot before (the root id for the first migration)."""
    table_entries: dict[str, Any] = {}
    for t in sorted(model, key=lambda t: t.name):
        columns = {}
        for c in t.columns:
            col: dict[str, Any] = {
                "name": c.name,
                "type": c.type,
                "primaryKey": c.primary_key,
                "notNull": c.not_null,
            }
            if c.default_snapshot is not None:
                col["default"] = c.default_snapshot
            columns[c.name] = col
        table_entries[f"public.{t.name}"] = {
            "name": t.name,
            "schema": "",
            "columns": columns,
            "indexes": {
                t.index_name(cols): {
                    "name": t.index_name(cols),
                    "columns": [
                        {"expression": col, "isExpression": False, "asc": True, "nulls": "last"}
                        for col in cols
                    ],
                    "isUnique": False,
                    "concurrently": False,
                    "method": "btree",
                    "with": {},
                }
                for cols in t.indexes
            },
            "foreignKeys": {
                fk.name(t.name): {
                    "name": fk.name(t.name),
                    "tableFrom": t.name,
                    "tableTo": fk.ref_table,
                    "columnsFrom": [fk.column],
                    "columnsTo": ["id"],
                    "onDelete": fk.on_delete,
                    "onUpdate": "no action",
                }
                for fk in t.foreign_keys
            },
            "compositePrimaryKeys": {},
            "uniqueConstraints": {
                t.unique_name(col): {
                    "name": t.unique_name(col),
                    "nullsNotDistinct": False,
                    "columns": [col],
                }
                for col in t.unique
            },
            "policies": {},
            "checkConstraints": {},
            "isRLSEnabled": False,
        }
    body = {
        "version": "7",
        "dialect": "postgresql",
        "tables": table_entries,
        "enums": {},
        "schemas": {},
        "sequences": {},
        "roles": {},
        "policies": {},
        "views": {},
        "_meta": {"columns": {}, "schemas": {}, "tables": {}},
    }
    # The first snapshot's id keeps its old derivation (projects already hold it); later ones include
    # prevId, so returning to an earlier schema still gives a new id.
    seed = (
        json.dumps(body, sort_keys=True)
        if prev_id == ROOT_SNAPSHOT_ID
        else prev_id + json.dumps(body, sort_keys=True)
    )
    snapshot_id = uuid.uuid5(_SNAPSHOT_NAMESPACE, seed)
    return {"id": str(snapshot_id), "prevId": prev_id, **body}


def from_snapshot(snap: dict[str, Any]) -> list[Table]:
    """The table model a snapshot describes (the inverse of `snapshot`), in the snapshot's order.
    Raises ValueError naming what it cannot read (a hand-written expression index, say)."""
    out = []
    for key, t in snap.get("tables", {}).items():
        name = t["name"]
        columns = []
        for c in t["columns"].values():
            default = c.get("default")
            columns.append(
                Column(
                    c["name"],
                    c["type"],
                    bool(c.get("notNull")),
                    default_sql_of(default),
                    default,
                    primary_key=bool(c.get("primaryKey")),
                )
            )
        table = Table(name, columns)
        for u in t.get("uniqueConstraints", {}).values():
            if len(u["columns"]) != 1:
                raise ValueError(f"{key}: unique constraint {u['name']} spans several columns")
            table.unique.append(u["columns"][0])
        for i in t.get("indexes", {}).values():
            cols = i["columns"]
            plain = all(not c.get("isExpression") and c.get("asc", True) for c in cols)
            if not cols or not plain or i.get("isUnique") or i.get("method", "btree") != "btree":
                raise ValueError(f"{key}: index {i['name']} is not an ascending btree index on columns")
            table.indexes.append(tuple(c["expression"] for c in cols))
        for fk in t.get("foreignKeys", {}).values():
            if len(fk["columnsFrom"]) != 1 or fk["columnsTo"] != ["id"]:
                raise ValueError(f"{key}: foreign key {fk['name']} is not a single column referencing id")
            table.foreign_keys.append(ForeignKey(fk["columnsFrom"][0], fk["tableTo"], fk["onDelete"]))
        out.append(table)
    return out


def default_sql_of(snapshot_default: Any) -> str | None:
    """The DEFAULT expression for a default as a snapshot records it (numbers and booleans as JSON)."""
    if snapshot_default is None or isinstance(snapshot_default, str):
        return snapshot_default
    if isinstance(snapshot_default, bool):
        return "true" if snapshot_default else "false"
    return js_number(snapshot_default)


def journal_entry(idx: int, when: int, tag: str) -> dict[str, Any]:
    return {"idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": True}


def journal() -> dict[str, Any]:
    return {
        "version": "7",
        "dialect": "postgresql",
        "entries": [journal_entry(0, MIGRATION_WHEN, MIGRATION_TAG)],
    }


def initial_migration(model: list[Table]) -> dict[str, str]:
    """The files under drizzle/ for a new project, by relative path."""
    return {
        f"drizzle/{MIGRATION_TAG}.sql": up_sql(model),
        f"drizzle/down/{MIGRATION_TAG}.sql": down_sql(model),
        "drizzle/meta/_journal.json": json.dumps(journal(), indent=2) + "\n",
        "drizzle/meta/0000_snapshot.json": json.dumps(snapshot(model), indent=2, ensure_ascii=False) + "\n",
    }
