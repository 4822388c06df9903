"""The generated project's first migration, as drizzle-kit would write it for src/db/schema.ts.

One table model gives the SQL (`drizzle/0000_init.sql`, statements split by `--> statement-breakpoint`),
its down script (`drizzle/down/`, used by `npm run db:rollback`), the journal, and drizzle-kit's snapshot
(`drizzle/meta/0000_snapshot.json`). With the snapshot in place `drizzle-kit generate` diffs the next
schema.ts change against this one, so later migrations come from drizzle-kit itself.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from backend_implementor.generate.express.codegen import ResourceCode

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
    indexes: list[str] = field(default_factory=list)  # single-column btree indexes

    # drizzle-kit's names, which the SQL and the snapshot must share.
    def unique_name(self, column: str) -> str:
        return f"{self.name}_{column}_unique"

    def index_name(self, column: str) -> str:
        return f"{self.name}_{column}_idx"


def _id() -> Column:
    return Column("id", "uuid", True, "gen_random_uuid()", "gen_random_uuid()", primary_key=True)


def _timestamp(name: str, not_null: bool = True, default_now: bool = True) -> Column:
    now = "now()" if default_now else None
    return Column(name, "timestamp with time zone", not_null, now, now)


def tables(resources: list[ResourceCode], auth: bool) -> list[Table]:
    """Every table in creation order (referenced tables first)."""
    out: list[Table] = []
    if auth:
        out.append(
            Table(
                "users",
                [
                    _id(),
                    Column("email", "varchar(320)", True),
                    Column("password_hash", "text", True),
                    Column("role", "text", True),
                    _timestamp("created_at"),
                    _timestamp("updated_at"),
                ],
                unique=["email"],
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
                indexes=["user_id", "family_id"],
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


def up_sql(model: list[Table]) -> str:
    creates, fks, indexes = [], [], []
    for t in model:
        lines = [c.sql() for c in t.columns]
        lines += [f'CONSTRAINT "{t.unique_name(col)}" UNIQUE("{col}")' for col in t.unique]
        creates.append(f'CREATE TABLE "{t.name}" (\n' + ",\n".join("\t" + line for line in lines) + "\n)")
        fks += [
            f'ALTER TABLE "{t.name}" ADD CONSTRAINT "{fk.name(t.name)}" FOREIGN KEY ("{fk.column}") '
            f'REFERENCES "public"."{fk.ref_table}"("id") ON DELETE {fk.on_delete} ON UPDATE no action'
            for fk in t.foreign_keys
        ]
        indexes += [
            f'CREATE INDEX "{t.index_name(col)}" ON "{t.name}" USING btree ("{col}")' for col in t.indexes
        ]
    return BREAKPOINT.join(s + ";" for s in creates + fks + indexes) + "\n"


def down_sql(model: list[Table]) -> str:
    return BREAKPOINT.join(f'DROP TABLE "{t.name}" CASCADE;' for t in reversed(model)) + "\n"


def snapshot(model: list[Table]) -> dict[str, Any]:
    """drizzle-kit's PostgreSQL snapshot (version 7) of the schema after this migration."""
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
                t.index_name(col): {
                    "name": t.index_name(col),
                    "columns": [{"expression": col, "isExpression": False, "asc": True, "nulls": "last"}],
                    "isUnique": False,
                    "concurrently": False,
                    "method": "btree",
                    "with": {},
                }
                for col in t.indexes
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
    snapshot_id = uuid.uuid5(_SNAPSHOT_NAMESPACE, json.dumps(body, sort_keys=True))
    return {"id": str(snapshot_id), "prevId": "00000000-0000-0000-0000-000000000000", **body}


def journal() -> dict[str, Any]:
    entry = {"idx": 0, "version": "7", "when": MIGRATION_WHEN, "tag": MIGRATION_TAG, "breakpoints": True}
    return {"version": "7", "dialect": "postgresql", "entries": [entry]}


def initial_migration(resources: list[ResourceCode], auth: bool) -> dict[str, str]:
    """The files under drizzle/ for a new project, by relative path."""
    model = tables(resources, auth)
    return {
        f"drizzle/{MIGRATION_TAG}.sql": up_sql(model),
        f"drizzle/down/{MIGRATION_TAG}.sql": down_sql(model),
        "drizzle/meta/_journal.json": json.dumps(journal(), indent=2) + "\n",
        "drizzle/meta/0000_snapshot.json": json.dumps(snapshot(model), indent=2, ensure_ascii=False) + "\n",
    }
