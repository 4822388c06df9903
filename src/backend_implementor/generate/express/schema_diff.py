"""The next migration: the difference between the schema the migrations have built (the latest drizzle
snapshot) and the schema a spec asks for, as up and down SQL.

Each change knows its own up and down statements and a phase; up runs the changes in phase order, down runs
their inverses in the reverse order, so dependencies hold both ways (tables exist before foreign keys point
at them; constraints go before their columns). A change that can lose data, or fail on rows already in the
table, carries the reason (`destructive`) and is refused unless the user allows it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from backend_implementor.generate.errors import GenerateError
from backend_implementor.generate.express.migrations import (
    Column,
    Key,
    Table,
    add_fk_sql,
    constraint_name,
    create_index_sql,
    create_table_sql,
    from_snapshot,
    index_sql,
    join_statements,
    journal_entry,
    snapshot,
)

# Phases, in the order up runs them.
RENAME_TABLE, RENAME_COLUMN, RENAME_CONSTRAINT, DROP_CONSTRAINT, CREATE_TABLE = range(5)
ADD_COLUMN, ALTER_COLUMN, DROP_COLUMN, DROP_TABLE, ADD_CONSTRAINT = range(5, 10)


@dataclass
class Change:
    phase: int
    slug: str  # for the migration's file name: add_books_pages
    summary: str  # for people: books: add column pages
    up: list[str]
    down: list[str]
    destructive: str | None = None  # why it may lose data or fail on existing rows


@dataclass
class Renames:
    """What the spec's `renamed_from` says: new table -> old table, (new table, new column) -> old column."""

    tables: dict[str, str] = field(default_factory=dict)
    columns: dict[tuple[str, str], str] = field(default_factory=dict)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Type changes that keep every value (and never fail to convert).
def _widens(old: str, new: str) -> bool:
    if old == new:
        return True
    if new == "text" and not old.endswith("[]") and old != "jsonb":
        return True  # every scalar has a text form
    o, n = _varchar_len(old), _varchar_len(new)
    if o is not None and n is not None:
        return n >= o
    if old == "integer" and new in ("bigint", "double precision"):
        return True
    po, pn = _numeric(old), _numeric(new)
    if old == "integer" and pn is not None:
        return pn[0] - pn[1] >= 10
    if po is not None and pn is not None:
        return pn[1] >= po[1] and pn[0] - pn[1] >= po[0] - po[1]
    return False


def _varchar_len(t: str) -> int | None:
    if t.startswith("varchar(") and t.endswith(")"):
        return int(t[8:-1])
    return None


def _numeric(t: str) -> tuple[int, int] | None:
    if t.startswith("numeric(") and t.endswith(")"):
        p, s = t[8:-1].split(",")
        return int(p), int(s)
    return None


def _add_column_sql(table: str, c: Column) -> str:
    return f"ALTER TABLE {q(table)} ADD COLUMN {c.sql()};"


def _drop_column_sql(table: str, column: str) -> str:
    return f"ALTER TABLE {q(table)} DROP COLUMN {q(column)};"


def _restore_column_sql(table: str, c: Column) -> list[str]:
    """Down of a dropped column: the column back as it was; its values cannot come back. A NOT NULL column with
    no default cannot be added to a table with rows, so there it returns nullable."""
    if not (c.not_null and c.default_sql is None):
        return [_add_column_sql(table, c)]
    loose = Column(c.name, c.type, False, None, None)
    return [
        _add_column_sql(table, loose),
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {q(table)}) THEN "
        f"ALTER TABLE {q(table)} ALTER COLUMN {q(c.name)} SET NOT NULL; END IF; END $$;",
    ]


def _alter_type(table: str, column: str, new_type: str) -> str:
    return (
        f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} SET DATA TYPE {new_type} "
        f"USING {q(column)}::{new_type};"
    )


def _set_default(table: str, column: str, default: str | None) -> str:
    if default is None:
        return f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} DROP DEFAULT;"
    return f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} SET DEFAULT {default};"


def _set_not_null(table: str, column: str, not_null: bool) -> str:
    verb = "SET" if not_null else "DROP"
    return f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} {verb} NOT NULL;"


def _drop_constraint(table: str, name: str) -> str:
    return f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)};"


def diff(old: list[Table], new: list[Table], renames: Renames | None = None) -> list[Change]:
    """The changes that turn the `old` schema into the `new` one, in the order up runs them."""
    renames = renames or Renames()
    old_by = {t.name: t for t in old}
    new_names = {t.name for t in new}
    changes: list[Change] = []
    matched: set[str] = set()
    table_map: dict[str, str] = {}  # old table name -> new table name, for the survivors
    pairs: list[tuple[Table, Table]] = []
    for nt in new:
        ot = old_by.get(nt.name)
        previous = renames.tables.get(nt.name)
        if ot is None and previous in old_by and previous not in new_names:
            ot = old_by[previous]
            changes.append(
                Change(
                    RENAME_TABLE,
                    f"rename_{previous}",
                    f"{previous}: renamed to {nt.name} (rows kept)",
                    # PostgreSQL keeps the primary key's old name; a new project's table would have its own.
                    [
                        f"ALTER TABLE {q(previous)} RENAME TO {q(nt.name)};",
                        _rename_constraint_sql(nt.name, f"{previous}_pkey", f"{nt.name}_pkey"),
                    ],
                    [
                        _rename_constraint_sql(nt.name, f"{nt.name}_pkey", f"{previous}_pkey"),
                        f"ALTER TABLE {q(nt.name)} RENAME TO {q(previous)};",
                    ],
                )
            )
        if ot is None:
            changes += _create_table(nt)
            continue
        matched.add(ot.name)
        table_map[ot.name] = nt.name
        pairs.append((ot, nt))
    for ot in old:
        if ot.name not in matched:
            changes.append(
                Change(
                    DROP_TABLE,
                    f"drop_{ot.name}",
                    f"{ot.name}: drop table",
                    [f"DROP TABLE {q(ot.name)} CASCADE;"],
                    [
                        create_table_sql(ot),
                        *(add_fk_sql(ot, fk) for fk in ot.foreign_keys),
                        *(create_index_sql(ot, c) for c in ot.indexes),
                    ],
                    destructive=f"drops table {ot.name} and every row in it",
                )
            )
    for ot, nt in pairs:
        changes += _alter_table(ot, nt, renames, table_map)
    changes.sort(key=lambda c: c.phase)  # stable: the order within a phase is the model's
    return changes


def _create_table(t: Table) -> list[Change]:
    out = [
        Change(
            CREATE_TABLE,
            f"create_{t.name}",
            f"{t.name}: create table",
            [create_table_sql(t)],
            [f"DROP TABLE {q(t.name)} CASCADE;"],
        )
    ]
    # Foreign keys and indexes come last, when every table they name exists; DROP TABLE undoes them.
    extra = [add_fk_sql(t, fk) for fk in t.foreign_keys] + [create_index_sql(t, c) for c in t.indexes]
    if extra:
        out.append(Change(ADD_CONSTRAINT, "", f"{t.name}: foreign keys and indexes", extra, []))
    return out


def _alter_table(ot: Table, nt: Table, renames: Renames, table_map: dict[str, str]) -> list[Change]:
    table = nt.name
    out: list[Change] = []
    old_cols = {c.name: c for c in ot.columns}
    new_col_names = {c.name for c in nt.columns}
    col_map: dict[str, str] = {}  # old column -> new column
    added: set[str] = set()  # columns this migration creates (constraints on them cannot be violated)
    for c in nt.columns:
        before = old_cols.get(c.name)
        previous = renames.columns.get((table, c.name))
        if before is None and previous in old_cols and previous not in new_col_names:
            before = old_cols[previous]
            out.append(
                Change(
                    RENAME_COLUMN,
                    f"rename_{table}_{previous}",
                    f"{table}: column {previous} renamed to {c.name} (values kept)",
                    [f"ALTER TABLE {q(table)} RENAME COLUMN {q(previous)} TO {q(c.name)};"],
                    [f"ALTER TABLE {q(table)} RENAME COLUMN {q(c.name)} TO {q(previous)};"],
                )
            )
        if before is None:
            risk = None
            if c.not_null and c.default_sql is None:
                risk = (
                    f"adds {table}.{c.name} as NOT NULL without a default, which fails if the table has "
                    "rows (give it a default, or make it optional)"
                )
            out.append(
                Change(
                    ADD_COLUMN,
                    f"add_{table}_{c.name}",
                    f"{table}: add column {c.name}",
                    [_add_column_sql(table, c)],
                    [_drop_column_sql(table, c.name)],
                    risk,
                )
            )
            added.add(c.name)
            continue
        col_map[before.name] = c.name
        out += _alter_column(table, before, c)
    for name, c in old_cols.items():
        if name not in col_map:
            out.append(
                Change(
                    DROP_COLUMN,
                    f"drop_{table}_{name}",
                    f"{table}: drop column {name}",
                    [_drop_column_sql(table, name)],
                    _restore_column_sql(table, c),
                    destructive=f"drops column {table}.{name} and its values",
                )
            )

    out += _keyed(
        UNIQUE, table, ot.name, [(c,) for c in ot.unique], [(c,) for c in nt.unique], col_map, added
    )
    out += _keyed(INDEX, table, ot.name, ot.indexes, nt.indexes, col_map, added)

    # A foreign key is the same when its column, target (after renames) and on_delete are.
    kept_fks = set()
    for fk in ot.foreign_keys:
        col, target = col_map.get(fk.column), table_map.get(fk.ref_table)
        old_name = fk.name(ot.name)
        same = next(
            (
                n
                for n in nt.foreign_keys
                if (n.column, n.ref_table, n.on_delete) == (col, target, fk.on_delete)
            ),
            None,
        )
        if same is None:
            # Down runs before the renames are undone: the column and target still have their new names
            # (a dropped target is back under its old one).
            restore = _fk_sql(table, old_name, col or fk.column, target or fk.ref_table, fk.on_delete)
            out.append(
                Change(
                    DROP_CONSTRAINT,
                    "",
                    f"{table}: drop foreign key {old_name}",
                    [_drop_constraint(table, old_name)],
                    [restore],
                )
            )
            continue
        kept_fks.add(same.column)
        if old_name != same.name(table):
            out.append(_rename_constraint(table, old_name, same.name(table)))
    before_fks = {(col_map.get(fk.column), table_map.get(fk.ref_table)) for fk in ot.foreign_keys}
    for fk in nt.foreign_keys:
        if fk.column not in kept_fks:
            risk = None
            # A new column holds no ids yet, and the same key with another on_delete was valid already.
            if fk.column not in added and (fk.column, fk.ref_table) not in before_fks:
                risk = (
                    f"adds a foreign key on {table}.{fk.column}, which fails if a row names a missing "
                    f"{fk.ref_table} id"
                )
            out.append(
                Change(
                    ADD_CONSTRAINT,
                    "",
                    f"{table}: foreign key {fk.column} -> {fk.ref_table}",
                    [add_fk_sql(nt, fk)],
                    [_drop_constraint(table, fk.name(table))],
                    risk,
                )
            )
    return out


@dataclass(frozen=True)
class _Kind:
    """A unique constraint or an index: its name, and the SQL to add, drop and rename one."""

    suffix: str  # drizzle-kit's name is <table>_<columns><suffix>
    add: Callable[[str, str, Key], str]  # (table, name, columns)
    drop: Callable[[str, str], str]  # (table, name)
    rename: Callable[[str, str, str], str]  # (table, old name, new name)
    added: str  # summary of adding one, {col}
    dropped: str  # summary of dropping one, {col}
    risk: str | None  # why adding one to existing columns can fail, {where}


UNIQUE = _Kind(
    "_unique",
    lambda table, name, cols: f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} UNIQUE({q(cols[0])});",
    lambda table, name: _drop_constraint(table, name),
    lambda table, old, new: _rename_constraint_sql(table, old, new),
    "{col} unique",
    "{col} no longer unique",
    "makes {where} unique, which fails if rows share a value",
)
INDEX = _Kind(
    "_idx",
    index_sql,
    lambda _table, name: f"DROP INDEX {q(name)};",
    lambda _table, old, new: f"ALTER INDEX {q(old)} RENAME TO {q(new)};",
    "index {col}",
    "drop index on {col}",
    None,
)


def _keyed(
    kind: _Kind,
    table: str,
    old_table: str,
    old_keys: list[Key],
    new_keys: list[Key],
    col_map: dict[str, str],
    added: set[str],
) -> list[Change]:
    """Unique constraints or indexes, each known by its columns after renames: kept ones renamed with their
    table or columns, others dropped or added. One on a dropped column is dropped explicitly too, so that
    down can put it back with the column."""
    out = []
    kept = set()
    slug = kind.suffix.strip("_")
    for before in old_keys:
        mapped = tuple(col_map.get(c) for c in before)
        old_name = constraint_name(old_table, before, kind.suffix)
        if None in mapped or mapped not in new_keys:
            here = tuple(m or c for m, c in zip(mapped, before, strict=True))
            out.append(Change(DROP_CONSTRAINT, f"{table}_{'_'.join(here)}_no_{slug}",
                              f"{table}: {kind.dropped.format(col=', '.join(here))}",
                              [kind.drop(table, old_name)], [kind.add(table, old_name, here)]))  # fmt: skip
            continue
        key = cast(Key, mapped)
        kept.add(key)
        new_name = constraint_name(table, key, kind.suffix)
        if old_name != new_name:
            out.append(Change(RENAME_CONSTRAINT, "", f"{table}: {old_name} renamed to {new_name}",
                              [kind.rename(table, old_name, new_name)], [kind.rename(table, new_name, old_name)]))  # fmt: skip
    for key in new_keys:
        if key in kept:
            continue
        name = constraint_name(table, key, kind.suffix)
        fresh = set(key) <= added
        risk = kind.risk.format(where=f"{table}.{'/'.join(key)}") if kind.risk and not fresh else None
        out.append(Change(ADD_CONSTRAINT, f"{table}_{'_'.join(key)}_{slug}",
                          f"{table}: {kind.added.format(col=', '.join(key))}",
                          [kind.add(table, name, key)], [kind.drop(table, name)], risk))  # fmt: skip
    return out


def _fk_sql(table: str, name: str, column: str, target: str, on_delete: str) -> str:
    return (
        f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} FOREIGN KEY ({q(column)}) "
        f'REFERENCES "public".{q(target)}("id") ON DELETE {on_delete} ON UPDATE no action;'
    )


def _rename_constraint_sql(table: str, old_name: str, new_name: str) -> str:
    return f"ALTER TABLE {q(table)} RENAME CONSTRAINT {q(old_name)} TO {q(new_name)};"


def _rename_constraint(table: str, old_name: str, new_name: str) -> Change:
    return Change(
        RENAME_CONSTRAINT,
        "",
        f"{table}: constraint {old_name} renamed to {new_name}",
        [_rename_constraint_sql(table, old_name, new_name)],
        [_rename_constraint_sql(table, new_name, old_name)],
    )


def _alter_column(table: str, before: Column, after: Column) -> list[Change]:
    col = after.name
    out = []
    if before.type != after.type:
        risk = None
        if not _widens(before.type, after.type):
            risk = (
                f"changes {table}.{col} from {before.type} to {after.type}, which can lose or refuse values"
            )
        up, down = [], []
        # A default of the old type may not cast: take it off around the type change.
        if before.default_sql is not None:
            up.append(_set_default(table, col, None))
        up.append(_alter_type(table, col, after.type))
        if after.default_sql is not None:
            up.append(_set_default(table, col, after.default_sql))
        if after.default_sql is not None:
            down.append(_set_default(table, col, None))
        down.append(_alter_type(table, col, before.type))
        if before.default_sql is not None:
            down.append(_set_default(table, col, before.default_sql))
        out.append(
            Change(
                ALTER_COLUMN, f"{table}_{col}_type", f"{table}: {col} becomes {after.type}", up, down, risk
            )
        )
    elif before.default_sql != after.default_sql:
        out.append(
            Change(
                ALTER_COLUMN,
                f"{table}_{col}_default",
                f"{table}: {col} default {after.default_sql or 'removed'}",
                [_set_default(table, col, after.default_sql)],
                [_set_default(table, col, before.default_sql)],
            )
        )
    if before.not_null != after.not_null:
        risk = None
        if after.not_null:
            risk = f"makes {table}.{col} NOT NULL, which fails if a row holds no value"
        word = "required" if after.not_null else "optional"
        out.append(
            Change(
                ALTER_COLUMN,
                f"{table}_{col}_{word}",
                f"{table}: {col} becomes {word}",
                [_set_not_null(table, col, after.not_null)],
                [_set_not_null(table, col, before.not_null)],
                risk,
            )
        )
    return out


# ---- the next migration -------------------------------------------------------------------------


class MigrationHistoryError(GenerateError):
    """drizzle/ cannot be read as a migration history (names the file)."""


@dataclass
class NextMigration:
    tag: str
    changes: list[Change]
    files: dict[str, str]  # relative path -> text: the up and down SQL, the snapshot, the extended journal

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]


def _read_json(project: Path, rel: str) -> Any:
    try:
        return json.loads((project / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MigrationHistoryError(f"{rel}: missing (the migration history needs it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MigrationHistoryError(f"{rel}: cannot be read: {exc}") from None


def current_schema(project: Path) -> tuple[dict[str, Any], dict[str, Any], list[Table]]:
    """(journal, latest snapshot, its table model): the schema the project's migrations build, whoever wrote
    them (bimpl or `npm run db:generate`)."""
    journal_data = _read_json(project, "drizzle/meta/_journal.json")
    entries = journal_data.get("entries") if isinstance(journal_data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise MigrationHistoryError("drizzle/meta/_journal.json: has no migration entries")
    last = entries[-1]
    rel = f"drizzle/meta/{int(last['idx']):04d}_snapshot.json"
    snap = _read_json(project, rel)
    try:
        model = from_snapshot(snap)
    except (KeyError, TypeError, ValueError) as exc:
        raise MigrationHistoryError(f"{rel}: {exc}") from None
    return journal_data, snap, model


def _slug(changes: list[Change]) -> str:
    slugs = [c.slug for c in changes if c.slug]
    name = "_".join(slugs[:2]) + ("_and_more" if len(slugs) > 2 else "")
    return re.sub(r"[^a-z0-9_]+", "_", name.lower())[:60].strip("_") or "schema"


def next_migration(
    project: Path, model: list[Table], renames: Renames, name: str | None = None, now_ms: int | None = None
) -> NextMigration | None:
    """The migration from the project's current schema to `model`, numbered after the last one; None when
    nothing changed. Earlier migrations are never touched: only new files and the journal's new entry."""
    journal_data, snap, old = current_schema(project)
    changes = diff(old, model, renames)
    if not changes:
        return None
    last = journal_data["entries"][-1]
    idx = int(last["idx"]) + 1
    tag = f"{idx:04d}_{name or _slug(changes)}"
    when = max(int(last["when"]) + 1, now_ms if now_ms is not None else int(time.time() * 1000))
    up = [s for c in changes for s in c.up]
    down = [s for c in reversed(changes) for s in c.down]
    journal_data = {**journal_data, "entries": [*journal_data["entries"], journal_entry(idx, when, tag)]}
    header = "".join(f"-- {c.summary}\n" for c in changes if c.slug)
    return NextMigration(
        tag,
        changes,
        {
            f"drizzle/{tag}.sql": join_statements(up),
            f"drizzle/down/{tag}.sql": header.replace("-- ", "-- undo: ") + join_statements(down),
            f"drizzle/meta/{idx:04d}_snapshot.json": json.dumps(
                snapshot(model, str(snap["id"])), indent=2, ensure_ascii=False
            )
            + "\n",
            "drizzle/meta/_journal.json": json.dumps(journal_data, indent=2) + "\n",
        },
    )
