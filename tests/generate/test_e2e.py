"""Per example: generate -> npm ci (shared) -> build with 0 type errors -> the generated vitest suite ->
boot on PGlite -> black-box HTTP checks -> graceful stop -> passwords in the database are argon2id."""

from __future__ import annotations

import json

import pytest

from .blackbox import run_checks
from .conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    EXAMPLES,
    build,
    make_project,
    node_eval,
    require_ok,
    run,
    serve,
)

pytestmark = pytest.mark.slow

READ_HASHES = """
import { PGlite } from '@electric-sql/pglite';
const db = new PGlite(process.env.PGLITE_DIR);
const { rows } = await db.query('select email, password_hash from users');
console.log(JSON.stringify(rows));
await db.close();
"""


@pytest.mark.parametrize("name", EXAMPLES)
def test_builds_and_passes_its_own_tests(projects, name):
    project = projects[name]
    build(project)
    require_ok(run(["npm", "run", "typecheck"], project.dir), "npm run typecheck (src + test)")
    proc = run(["npm", "test"], project.dir, timeout=900)
    require_ok(proc, "npm test")
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_served_api_passes_black_box_checks(projects, name, tmp_path):
    project = projects[name]
    with serve(project, tmp_path) as server:
        facts = run_checks(server.url, project.spec, (ADMIN_EMAIL, ADMIN_PASSWORD))
        assert server.stop() == 0, "SIGTERM should shut down cleanly"
    if project.spec.auth is None:
        return  # no users table to inspect
    rows = json.loads(node_eval(project, READ_HASHES, env={"PGLITE_DIR": str(tmp_path / "data" / "pglite")}))
    hashes = {r["email"]: r["password_hash"] for r in rows}
    assert set(facts["emails"]) <= set(hashes)
    assert all(h.startswith("$argon2id$") for h in hashes.values())
    # Salted: the users registered with the same password have different hashes.
    same_password = [hashes[e] for e in facts["emails"]]
    assert len(set(same_password)) == len(same_password)


def test_production_refuses_to_start_without_a_strong_jwt_secret(projects, tmp_path):
    project = projects["library"]
    build(project)
    env = {"NODE_ENV": "production", "PGLITE_DIR": str(tmp_path / "db"), "JWT_SECRET": "short", "PORT": "0"}
    proc = run(["node", "dist/server.js"], project.dir, env=env, timeout=60)
    assert proc.returncode == 1
    assert "JWT_SECRET" in proc.stderr and "at least 32 bytes" in proc.stderr


def test_dot_env_fills_in_what_the_environment_does_not_set(projects, tmp_path):
    project = projects["library"]
    build(project)
    dot_env = project.dir / ".env"
    dot_env.write_text("LOG_LEVEL=loud\nNODE_ENV=production\nJWT_SECRET=short\n")
    try:
        env = {"PGLITE_DIR": str(tmp_path / "db"), "PORT": "0"}
        read = run(["node", "dist/server.js"], project.dir, env=env, timeout=60)
        assert read.returncode == 1 and "LOG_LEVEL" in read.stderr, read.stderr  # .env was read
        env["LOG_LEVEL"] = "warn"
        wins = run(["node", "dist/server.js"], project.dir, env=env, timeout=60)
        # The environment's LOG_LEVEL won; .env still made it production, with a too-short secret.
        assert wins.returncode == 1 and "LOG_LEVEL" not in wins.stderr and "JWT_SECRET" in wins.stderr
        migrate = run(["npm", "run", "db:migrate"], project.dir, env=env, timeout=120)
        assert migrate.returncode != 0 and "JWT_SECRET" in migrate.stderr  # the db scripts read it too
    finally:
        dot_env.unlink()


@pytest.mark.parametrize("name", [*EXAMPLES, "alltypes"])
def test_drizzle_kit_finds_the_schema_and_the_committed_snapshot_equal(name, node_modules, tmp_path):
    project = make_project(name, tmp_path, node_modules)
    proc = run(["npm", "run", "db:generate"], project.dir, timeout=300)
    require_ok(proc, "npm run db:generate")
    assert "No schema changes" in proc.stdout, proc.stdout[-2000:]
    assert sorted(p.name for p in (project.dir / "drizzle").iterdir()) == ["0000_init.sql", "down", "meta"]
    if name == "alltypes":
        assert_defaults_apply(project, tmp_path)


READ_DEFAULTS = """
import { PGlite } from '@electric-sql/pglite';
const db = new PGlite(process.env.PGLITE_DIR);
const { rows } = await db.query(
  "select column_name, column_default from information_schema.columns where table_name = 'things' and column_default is not null and column_name not in ('id', 'created_at', 'updated_at')",
);
const out = {};
for (const { column_name, column_default } of rows) {
  out[column_name] = (await db.query(`select to_jsonb(${column_default}) as v`)).rows[0].v;
}
console.log(JSON.stringify(out));
await db.close();
"""


def assert_defaults_apply(project, tmp_path):
    """The migration applies, and every default the database holds is the spec's value."""
    env = {"PGLITE_DIR": str(tmp_path / "db")}
    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate")
    stored = json.loads(node_eval(project, READ_DEFAULTS, env=env))
    fields = project.spec.resources["things"].fields
    expected = {name: f.default for name, f in fields.items() if f.default is not None}
    expected["d"] = float(expected["d"])  # numeric comes back as a JSON number
    assert stored == expected


def test_a_schema_change_becomes_the_next_migration_and_applies(node_modules, tmp_path):
    project = make_project("library", tmp_path, node_modules)
    schema = project.dir / "src" / "db" / "schema.ts"
    text = schema.read_text()
    anchor = "    copies: integer('copies').default(1).notNull(),\n"
    assert anchor in text
    schema.write_text(text.replace(anchor, anchor + "    pages: integer('pages'),\n"))
    require_ok(
        run(["npm", "run", "db:generate", "--", "--name", "add_pages"], project.dir, timeout=300),
        "db:generate",
    )
    up = (project.dir / "drizzle" / "0001_add_pages.sql").read_text()
    assert up.strip() == 'ALTER TABLE "books" ADD COLUMN "pages" integer;'
    (project.dir / "drizzle" / "down" / "0001_add_pages.sql").write_text(
        'ALTER TABLE "books" DROP COLUMN "pages";\n'
    )

    env = {"PGLITE_DIR": str(tmp_path / "db")}
    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate")
    columns = "const { rows } = await db.query(\"select column_name from information_schema.columns where table_name = 'books'\"); console.log(rows.map((r) => r.column_name).join(','));"
    script = f"import {{ PGlite }} from '@electric-sql/pglite'; const db = new PGlite(process.env.PGLITE_DIR); {columns} await db.close();"
    assert "pages" in node_eval(project, script, env=env).strip().split(",")
    rolled = run(["npm", "run", "db:rollback"], project.dir, env=env)
    require_ok(rolled, "db:rollback")
    assert "pages" not in node_eval(project, script, env=env).strip().split(",")


def test_arrays_of_emails_dates_and_instants_build_and_pass_their_tests(node_modules, tmp_path):
    project = make_project("arrays", tmp_path, node_modules)
    build(project)
    require_ok(run(["npm", "run", "typecheck"], project.dir), "npm run typecheck (src + test)")
    proc = run(["npm", "test"], project.dir, timeout=900)
    require_ok(proc, "npm test")
    assert " passed" in proc.stdout and "failed" not in proc.stdout
