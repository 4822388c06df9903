"""One project through six successive spec changes with `bimpl update`, as a user lives with it: a hand edit
in a router, a hand-written file and rows in the database (PGlite and PostgreSQL). After every step the
migration applies, the rows and hand edits survive, the down migration gives back the previous schema
exactly, and (on PGlite) drizzle-kit agrees with the snapshot and the generated suite passes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from backend_implementor.cli import app

from .conftest import example_path, node_eval, require_ok, run

pytestmark = pytest.mark.slow

SCHEMA_SQL = """
select json_build_object(
  'columns', (select json_agg(x order by x) from (
    select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || case when a.attnotnull then ' not null' else '' end
      || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as x
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped) s),
  'constraints', (select json_agg(x order by x) from (
    select conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) as x
    from pg_constraint where connamespace = 'public'::regnamespace) s),
  'indexes', (select json_agg(indexdef order by indexdef) from pg_indexes where schemaname = 'public')
) as schema
"""

# Runs one SQL statement on the project's database, PGlite or PostgreSQL, and prints the rows as JSON.
QUERY = """
const sql = process.env.SQL;
let rows;
if (process.env.DATABASE_URL) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  rows = (await client.query(sql)).rows;
  await client.end();
} else {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(process.env.PGLITE_DIR);
  rows = (await db.query(sql)).rows;
  await db.close();
}
console.log(JSON.stringify(rows));
"""


def fields(spec: dict[str, Any], resource: str) -> dict[str, Any]:
    return spec["resources"][resource]["fields"]


def rename_born(spec: dict[str, Any]) -> None:
    authors = spec["resources"]["authors"]
    authors["fields"] = {
        ("birth_date" if k == "born" else k): ({**v, "renamed_from": "born"} if k == "born" else v)
        for k, v in authors["fields"].items()
    }
    authors["sort"] = ["birth_date" if s == "born" else s for s in authors["sort"]]


def drop_format(spec: dict[str, Any]) -> None:
    del fields(spec, "books")["format"]
    spec["resources"]["books"]["filters"].remove("format")


# (what the step does, the spec edit, update's extra flags)
STEPS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("add a field with a default", lambda s: fields(s, "books").update(pages={"type": "integer", "min": 1, "default": 100}), []),
    ("add a required field with a default", lambda s: fields(s, "books").update(
        language={"type": "string", "required": True, "max_length": 10, "default": "en"}), []),
    ("add a resource with a ref", lambda s: s["resources"].update(reviews={
        "fields": {"book": {"type": "ref", "to": "books", "required": True, "on_delete": "cascade"},
                   "stars": {"type": "integer", "min": 1, "max": 5, "required": True}},
        "access": {"create": "authenticated"}}), []),
    # Existing rows could share a value, so bimpl asks; these rows are distinct and the constraint applies.
    ("add a unique index to a column with distinct data", lambda s: fields(s, "authors")["name"].update(unique=True),
     ["--allow-destructive"]),
    ("rename a field with renamed_from", rename_born, []),
    ("drop a field", drop_format, ["--allow-destructive"]),
]  # fmt: skip

HAND_EDIT = "// Hand edit: this router is ours now, and must survive every update.\n"


class Walk:
    def __init__(self, root: Path, node_modules: Path, env: dict[str, str]):
        self.dir = root / "library"
        self.env = env
        result = CliRunner().invoke(app, ["new", str(example_path("library")), "-o", str(self.dir)])
        assert result.exit_code == 0, result.output
        (self.dir / "node_modules").symlink_to(node_modules, target_is_directory=True)

    def npm(self, *args: str) -> str:
        proc = run(["npm", "run", *args], self.dir, env=self.env, timeout=300)
        require_ok(proc, f"npm run {' '.join(args)}")
        return proc.stdout

    def sql(self, statement: str) -> list[dict[str, Any]]:
        return json.loads(node_eval(self, QUERY, env={**self.env, "SQL": statement}))  # type: ignore[arg-type]

    def schema(self) -> dict[str, Any]:
        return self.sql(SCHEMA_SQL)[0]["schema"]

    def update(self, flags: list[str]) -> str:
        result = CliRunner().invoke(app, ["update", str(self.dir), *flags])
        assert result.exit_code == 0, result.output
        assert "conflicted" not in result.output, result.output
        return result.output


def walk_six_changes(walk: Walk, full: bool) -> None:
    router = walk.dir / "src/resources/books.ts"
    router.write_text(HAND_EDIT + router.read_text())
    custom = walk.dir / "src/custom/hello.ts"
    custom.parent.mkdir()
    custom.write_text("export const hello = (): string => 'world';\n")

    walk.npm("db:migrate")
    walk.sql("insert into authors (name, born) values ('Ursula K. Le Guin', '1929-10-21')")
    walk.sql(
        "insert into books (title, isbn, author, copies) "
        "select 'A Wizard of Earthsea', '9780547773742', id, 3 from authors"
    )
    for number, (what, edit, flags) in enumerate(STEPS, start=1):
        previous = walk.schema()
        spec_file = walk.dir / "bimpl.yaml"
        spec = yaml.safe_load(spec_file.read_text())
        edit(spec)
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        output = walk.update(flags)
        tags = json.loads((walk.dir / "drizzle/meta/_journal.json").read_text())["entries"]
        assert len(tags) == number + 1, f"step {number} ({what}) adds one migration:\n{output}"

        walk.npm("db:migrate")
        current = walk.schema()
        assert current != previous, what
        # Rows and hand edits survive.
        (book,) = walk.sql("select b.title, b.copies, a.name from books b join authors a on a.id = b.author")
        assert book == {"title": "A Wizard of Earthsea", "copies": 3, "name": "Ursula K. Le Guin"}, what
        assert router.read_text().startswith(HAND_EDIT), what
        assert custom.read_text() == "export const hello = (): string => 'world';\n"
        assert walk.sql("select pages from books") == [{"pages": 100}], "the new column's default filled in"
        if number >= 5:
            (author,) = walk.sql("select to_char(birth_date, 'YYYY-MM-DD') as d from authors")
            assert author == {"d": "1929-10-21"}, "renamed, the value kept"
        # Down gives back the previous schema exactly; up again the current one.
        assert f"rolled back {tags[-1]['tag']}" in walk.npm("db:rollback")
        assert walk.schema() == previous, f"step {number} ({what}): down"
        walk.npm("db:migrate")
        assert walk.schema() == current, f"step {number} ({what}): up again"
        if full:
            assert "No schema changes" in walk.npm("db:generate"), f"step {number}: drizzle-kit agrees"
            walk.npm("typecheck")
            walk.npm("test")


def test_six_spec_changes_on_pglite(node_modules, tmp_path):
    walk = Walk(tmp_path, node_modules, {"PGLITE_DIR": str(tmp_path / "db"), "DATABASE_URL": ""})
    walk_six_changes(walk, full=True)


@pytest.mark.postgres
def test_six_spec_changes_on_postgres(node_modules, tmp_path, database_url):
    walk = Walk(tmp_path, node_modules, {"DATABASE_URL": database_url})
    walk_six_changes(walk, full=False)
