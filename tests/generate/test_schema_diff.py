"""The next migration, applied to a real PostgreSQL: for each kind of spec change, up turns the old schema
into exactly the schema a new project of the changed spec gets, rows survive, and down gives back the old
schema exactly. Destructive changes are named. Fast: SQL through psycopg, no npm."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from backend_implementor.generate.express.migrations import BREAKPOINT, from_snapshot, snapshot, up_sql
from backend_implementor.generate.express.render import render_app, spec_renames
from backend_implementor.generate.express.schema_diff import diff
from backend_implementor.spec.loader import load_spec_text

BASE: dict[str, Any] = yaml.safe_load(
    """
name: shelf
auth: {roles: [user, staff], admin_role: staff}
resources:
  authors:
    fields:
      name: {type: string, required: true, max_length: 100}
  books:
    fields:
      title: {type: string, required: true, max_length: 100, index: true}
      isbn: {type: string, unique: true}
      author: {type: ref, to: authors, required: true}
      copies: {type: integer, default: 1}
      note: {type: text}
"""
)


def model_of(data: dict[str, Any]):
    spec = load_spec_text(yaml.safe_dump(data))
    return spec, render_app(spec)[1]


def changed(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    edit(data)
    return data


def books(d):
    return d["resources"]["books"]["fields"]


# (id, edit of the base spec, destructive changes expected)
CASES = [
    ("add-field-with-default", lambda d: books(d).update(pages={"type": "integer", "default": 100}), 0),
    ("add-required-field-with-default",
     lambda d: books(d).update(lang={"type": "string", "required": True, "default": "en"}), 0),
    ("add-optional-field", lambda d: books(d).update(summary={"type": "text"}), 0),
    ("add-required-field-without-default",
     lambda d: books(d).update(lang={"type": "string", "required": True}), 1),
    ("add-resource-with-ref", lambda d: d["resources"].update(reviews={"fields": {
        "book": {"type": "ref", "to": "books", "required": True, "on_delete": "cascade"},
        "stars": {"type": "integer", "required": True}}}), 0),
    ("unique-on-existing-column", lambda d: books(d)["title"].update(unique=True), 1),
    ("rename-field", lambda d: d["resources"]["books"].update(fields={
        ("name" if k == "title" else k): ({**v, "renamed_from": "title"} if k == "title" else v)
        for k, v in books(d).items()}), 0),
    ("rename-unique-ref-field", lambda d: d["resources"]["books"].update(fields={
        ("writer" if k == "author" else k): ({**v, "renamed_from": "author"} if k == "author" else v)
        for k, v in books(d).items()}), 0),
    ("rename-resource-others-refer-to", lambda d: d["resources"].update(
        {"writers": {**d["resources"].pop("authors"), "renamed_from": "authors"}}) or books(d)["author"].update(
        to="writers"), 0),
    ("drop-field", lambda d: books(d).pop("note"), 1),
    ("drop-indexed-unique-field", lambda d: books(d).pop("isbn"), 1),
    ("drop-resource", lambda d: (books(d).pop("author"), d["resources"].pop("authors")), 2),
    ("widen-varchar", lambda d: books(d)["title"].update(max_length=300), 0),
    ("narrow-varchar", lambda d: books(d)["title"].update(max_length=50), 1),
    ("string-to-integer", lambda d: books(d)["isbn"].update(type="integer"), 1),
    ("integer-to-decimal", lambda d: books(d)["copies"].update(type="decimal", precision=14, scale=2), 0),
    ("optional-to-required", lambda d: books(d)["note"].update(required=True), 1),
    ("required-to-optional", lambda d: books(d)["title"].update(required=False), 0),
    ("default-changed", lambda d: books(d)["copies"].update(default=2), 0),
    ("default-removed", lambda d: books(d)["copies"].pop("default"), 0),
    ("on-delete-changed", lambda d: books(d)["author"].update(on_delete="cascade"), 0),
    ("index-removed", lambda d: books(d)["title"].pop("index"), 0),
    ("unique-removed", lambda d: books(d)["isbn"].pop("unique"), 0),
]  # fmt: skip


@pytest.fixture
def connect() -> Iterator[Callable[[], psycopg.Connection]]:
    """Fresh databases on the test server; returns a factory of connections to new ones."""
    base = os.environ.get("BIMPL_TEST_DATABASE_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CI is set but BIMPL_TEST_DATABASE_URL is not: the PostgreSQL tests must run in CI")
        pytest.skip("BIMPL_TEST_DATABASE_URL is not set")
    made: list[tuple[str, psycopg.Connection]] = []

    def new() -> psycopg.Connection:
        name = f"bimpl_diff_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        conn = psycopg.connect(urlunsplit(urlsplit(base)._replace(path=f"/{name}")), autocommit=True)
        made.append((name, conn))
        return conn

    yield new
    with psycopg.connect(base, autocommit=True) as admin:
        for name, conn in made:
            conn.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_sql(conn: psycopg.Connection, script: str) -> None:
    """As drizzle's migrator does: every statement of the script in one transaction."""
    with conn.transaction():
        for statement in script.split(BREAKPOINT.strip()):
            if statement.strip():
                conn.execute(statement)


def schema(conn: psycopg.Connection) -> dict[str, Any]:
    """Columns, constraints and indexes of the public schema, order-independent."""
    columns = conn.execute(
        """select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid)
           from pg_attribute a join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace left join pg_attrdef d
             on d.adrelid = a.attrelid and d.adnum = a.attnum
           where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped"""
    ).fetchall()
    constraints = conn.execute(
        """select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint
           where connamespace = 'public'::regnamespace"""
    ).fetchall()
    indexes = conn.execute(
        "select tablename, indexname, indexdef from pg_indexes where schemaname = 'public'"
    )
    return {"columns": set(columns), "constraints": set(constraints), "indexes": set(indexes.fetchall())}


def seed(conn: psycopg.Connection) -> None:
    author = conn.execute("insert into authors (name) values ('Le Guin') returning id").fetchone()[0]
    conn.execute(
        "insert into books (title, isbn, author, note) values ('Earthsea', '9780547773742', %s, 'n')",
        [author],
    )


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "edit", "destructive"), CASES, ids=[c[0] for c in CASES])
def test_the_next_migration_builds_the_new_schema_keeps_rows_and_goes_back(connect, case, edit, destructive):
    assert_migrates(connect, BASE, changed(edit), destructive)


def listed(d):
    """Books listed by author and copies, sorted by title or copies: composite indexes."""
    d["resources"]["books"].update(filters=["author", "copies"], sort=["title", "copies"])


LISTED = changed(listed)


def rename_title_and_author(d):
    fields = books(d)
    d["resources"]["books"]["fields"] = {
        {"title": "heading", "author": "writer"}.get(k, k): (
            {**v, "renamed_from": k} if k in ("title", "author") else v
        )
        for k, v in fields.items()
    }
    d["resources"]["books"].update(filters=["writer", "copies"], sort=["heading", "copies"])


# (id, edit of the listed spec, destructive changes expected)
LIST_CASES = [
    ("filters-and-sorts-from-none", None, 0),
    ("sort-dropped", lambda d: d["resources"]["books"].update(sort=["title"]), 0),
    ("filter-dropped", lambda d: d["resources"]["books"].update(filters=["copies"]), 0),
    ("columns-of-composites-renamed", rename_title_and_author, 0),
    ("column-of-composites-dropped", lambda d: (books(d).pop("copies"),
        d["resources"]["books"].update(filters=["author"], sort=["title"])), 1),
]  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "edit", "destructive"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_composite_list_indexes_follow_the_spec(connect, case, edit, destructive):
    if edit is None:
        changes = assert_migrates(connect, BASE, LISTED, destructive)
    else:
        new = copy.deepcopy(LISTED)
        edit(new)
        changes = assert_migrates(connect, LISTED, new, destructive)
    if case == "columns-of-composites-renamed":
        # Renamed in place, not rebuilt: a rebuild of every index of a large table would lock it for long.
        assert not [c for c in changes if "CREATE INDEX" in " ".join(c.up) or "DROP INDEX" in " ".join(c.up)]
        assert any(
            'ALTER INDEX "books_author_title_id_idx" RENAME TO "books_writer_heading_id_idx";' in c.up
            for c in changes
        )


def assert_migrates(connect, old_data, new_data, destructive: int) -> list:
    _, old_model = model_of(old_data)
    new_spec, new_model = model_of(new_data)
    # The old schema as the project's history holds it: read back from its snapshot.
    old = from_snapshot(snapshot(old_model))
    changes = diff(old, new_model, spec_renames(new_spec))
    assert changes, "every case changes the schema"
    assert len([c for c in changes if c.destructive]) == destructive, [c.summary for c in changes]

    conn = connect()
    run_sql(conn, up_sql(old_model))
    before = schema(conn)
    fresh = connect()
    run_sql(fresh, up_sql(new_model))
    expected = schema(fresh)

    if destructive == 0:
        seed(conn)  # safe changes must apply with rows present
    run_sql(conn, "\n--> statement-breakpoint\n".join(s for c in changes for s in c.up))
    assert schema(conn) == expected, "up builds what a new project of the new spec has"
    if destructive == 0:
        assert conn.execute("select count(*) from books").fetchone()[0] == 1
    run_sql(conn, "\n--> statement-breakpoint\n".join(s for c in reversed(changes) for s in c.down))
    assert schema(conn) == before, "down gives back the old schema"
    run_sql(conn, "\n--> statement-breakpoint\n".join(s for c in changes for s in c.up))
    assert schema(conn) == expected
    return changes


@pytest.mark.postgres
def test_renames_keep_the_values(connect):
    def edit(d):
        d["resources"]["writers"] = {**d["resources"].pop("authors"), "renamed_from": "authors"}
        fields = books(d)
        fields["author"]["to"] = "writers"
        d["resources"]["books"]["fields"] = {
            ("heading" if k == "title" else k): ({**v, "renamed_from": "title"} if k == "title" else v)
            for k, v in fields.items()
        }

    _, old_model = model_of(BASE)
    new_spec, new_model = model_of(changed(edit))
    conn = connect()
    run_sql(conn, up_sql(old_model))
    seed(conn)
    changes = diff(from_snapshot(snapshot(old_model)), new_model, spec_renames(new_spec))
    assert not any(c.destructive for c in changes)
    run_sql(conn, "\n--> statement-breakpoint\n".join(s for c in changes for s in c.up))
    row = conn.execute("select b.heading, w.name from books b join writers w on w.id = b.author").fetchone()
    assert row == ("Earthsea", "Le Guin")


def test_no_change_is_no_migration():
    _, model = model_of(BASE)
    assert diff(from_snapshot(snapshot(model)), model) == []


def test_a_stale_renamed_from_is_harmless():
    """After the rename has been migrated, the hint names nothing that exists: no second rename."""
    data = changed(lambda d: books(d)["title"].update(renamed_from="old_title"))
    spec, model = model_of(data)
    _, base_model = model_of(BASE)
    assert diff(from_snapshot(snapshot(base_model)), model, spec_renames(spec)) == []


def test_destructive_reasons_name_table_and_column():
    _, model = model_of(changed(lambda d: books(d).pop("note")))
    _, base_model = model_of(BASE)
    (change,) = [c for c in diff(from_snapshot(snapshot(base_model)), model) if c.destructive]
    assert change.destructive == "drops column books.note and its values"
