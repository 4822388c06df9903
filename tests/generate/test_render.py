"""Fast unit tests of rendering: determinism, layout, safe output handling, clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backend_implementor.generate import GenerateError, OutputDirError, generate_project, render_project
from backend_implementor.generate.express.render import prune_lock
from backend_implementor.generate.express.samples import sample_pattern, sample_plan
from backend_implementor.spec.loader import load_spec, load_spec_text

from .conftest import EXAMPLES, example_path


@pytest.fixture(scope="module")
def library():
    return load_spec(example_path("library"))


def test_same_spec_gives_byte_identical_output(library, tmp_path):
    a = generate_project(library, tmp_path / "a")
    b = generate_project(load_spec(example_path("library")), tmp_path / "b")
    assert a == b
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_layout_matches_design(library):
    files = render_project(library)
    for path in [
        "src/app.ts",
        "src/server.ts",
        "src/config.ts",
        "src/db/schema.ts",
        "src/db/client.ts",
        "src/openapi.ts",
        "src/schemas.ts",
        "src/middleware/validate.ts",
        "src/middleware/errors.ts",
        "src/auth/routes.ts",
        "src/auth/service.ts",
        "drizzle/0000_init.sql",
        "drizzle/down/0000_init.sql",
        "drizzle/meta/_journal.json",
        "drizzle/meta/0000_snapshot.json",
        "drizzle.config.ts",
        "Dockerfile",
        "compose.yaml",
        ".env.example",
        "README.md",
        "package.json",
        "package-lock.json",
        "test/auth.test.ts",
    ]:
        assert path in files, path
    for name in library.resources:
        assert f"src/resources/{name}.ts" in files
        assert f"test/{name}.test.ts" in files
    for path, data in files.items():
        text = data.decode()
        assert "{{" not in text and "{%" not in text, f"unrendered template syntax in {path}"


def test_migration_indexes_every_fk_unique_index_filter_and_sort_field(library):
    sql = render_project(library)["drizzle/0000_init.sql"].decode()
    indexed = {
        (table, tuple(c.strip('" ') for c in cols.split(",")))
        for table, cols in re.findall(r'CREATE INDEX "\w+" ON "(\w+)" USING btree \(([^)]*)\)', sql)
    }
    unique = {(n, f) for n, r in library.resources.items() for f, spec in r.fields.items() if spec.unique}
    assert re.search(r'CONSTRAINT "books_isbn_unique" UNIQUE\("isbn"\)', sql)

    def leads(table: str, *cols: str) -> bool:  # some index starts with these columns
        return any(t == table and c[: len(cols)] == cols for t, c in indexed)

    for name, r in library.resources.items():
        wanted = {f for f, spec in r.fields.items() if spec.type == "ref" or spec.index}
        wanted |= set(r.filters) | set(r.sort) | {"created_at"}
        if r.owned:
            wanted.add("owner_id")
        for col in wanted - {f for n, f in unique if n == name}:
            assert leads(name, col), (name, col)
        # Where a filter meets a sort (the default created_at too), one index serves both, id last.
        for f in r.filters:
            for s in {*r.sort, "created_at"} - {f}:
                if (name, f) not in unique:
                    assert leads(name, f, s, "id"), (name, f, s)
        if r.access.list == "owner":
            assert all(leads(name, "owner_id", s, "id") for s in {*r.sort, "created_at"})
    # No index is the prefix of another: the longer one serves both.
    for t, cols in indexed:
        assert not any(o != cols and t == ot and o[: len(cols)] == cols for ot, o in indexed), (t, cols)
    assert leads("users", "created_at", "id")
    assert "ON DELETE restrict" in sql and "ON DELETE cascade" in sql


def test_package_json_and_lockfile_agree(library):
    files = render_project(library)
    pkg = json.loads(files["package.json"])
    lock = json.loads(files["package-lock.json"])
    assert pkg["name"] == lock["name"] == lock["packages"][""]["name"] == "library"
    assert pkg["dependencies"] == lock["packages"][""]["dependencies"]
    assert pkg["devDependencies"] == lock["packages"][""]["devDependencies"]
    assert pkg["devDependencies"]["typescript"].startswith("~5.9")
    banned = {"better-sqlite3", "prisma", "bcrypt", "argon2"}
    assert not banned & {p.rsplit("node_modules/", 1)[-1] for p in lock["packages"]}


def test_refuses_a_non_empty_directory_that_is_not_a_bimpl_project(library, tmp_path):
    out = tmp_path / "app"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=r"not empty \(keep.txt\) and not a bimpl project"):
        generate_project(library, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["app"], "no temporary directories left behind"


def test_writes_beside_a_fresh_repository_and_the_spec_itself(library, tmp_path):
    out = tmp_path / "app"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    spec = out / "spec.yaml"
    spec.write_bytes(example_path("library").read_bytes())
    generate_project(library, out, spec.read_bytes(), spec_path=spec)
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (out / "bimpl.yaml").read_bytes() == spec.read_bytes() and (out / "src/app.ts").exists()
    with pytest.raises(OutputDirError, match="already a bimpl project"):
        generate_project(library, out)


def test_a_failed_render_writes_nothing(tmp_path):
    spec = load_spec_text("name: x\nresources: {}\n")
    with pytest.raises(GenerateError, match="no resources"):
        generate_project(spec, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_every_example_renders(tmp_path):
    for name in EXAMPLES:
        files = render_project(load_spec(example_path(name)))
        assert files["package.json"].startswith(b"{")


def test_samples_respect_constraints(library):
    for pattern in ["^[0-9]{13}$", "^[A-Z]{3}-[0-9]{4}$", "^[a-z0-9]+(-[a-z0-9]+)*$", r"^(foo|bar)\d+$"]:
        values = [sample_pattern(pattern, i) for i in range(40)]
        assert all(re.fullmatch(pattern, v) for v in values), pattern
        assert len(set(values)) == 40, pattern
    plan = sample_plan(library)
    isbns = [b["isbn"] for b in plan["books"]["bodies"]]
    assert len(set(isbns)) == len(isbns)
    assert plan["loans"]["stranger"] == "member_2"
    assert plan["books"]["forbidden"]["create"] == "member"


def _bimpl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend_implementor", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_new_reports_bad_spec_with_location_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: shop\nauth: {roles: [user]}\nresources:\n  items:\n    fields:\n      x: {type: ref, to: nowhere}\n"
    )
    proc = _bimpl("new", str(bad), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad.yaml:6" in proc.stderr and "resources.items.fields.x.to" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_new_writes_and_prints_next_steps(tmp_path):
    proc = _bimpl("new", str(example_path("library")), "-o", str(tmp_path / "lib"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "npm ci --ignore-scripts && npm test && npm start" in proc.stdout
    assert (tmp_path / "lib" / "src" / "resources" / "books.ts").exists()
    again = _bimpl("new", str(example_path("library")), "-o", str(tmp_path / "lib"), cwd=tmp_path)
    assert again.returncode == 1 and "bimpl update" in again.stderr and "Traceback" not in again.stderr
    assert again.stderr.startswith(
        f"error: {tmp_path / 'lib'}: already a bimpl project"
    )  # the folder, not the spec


def test_owner_rules_scope_every_owner_action(library):
    # Regression: Jinja resolves `access.update` to dict.update, which silently dropped the owner check.
    service = render_project(library)["src/services/loans.ts"].decode()
    method = lambda name: service.split(f"  async {name}(", 1)[1].split("\n  async ", 1)[0]  # noqa: E731
    assert "findOwnById.execute({ id, owner: me.id })" in method("find")
    assert "eq(loans.owner_id, sql.placeholder('owner'))" in service
    assert "const me = permit(loansAccess.update, user)" in method("update")
    assert "ownedBy(me)" in method("update")
    listed = method("list")
    assert "const me = permit(loansAccess.list, user)" in listed and "ownedBy(me, bind)" in listed
    # Filters bind apart from the owner scope: a filter named `owner` cannot replace its value.
    assert "bind('filter_book', query.book)" in listed
    assert "ownedBy" not in method(
        "remove"
    )  # delete is [librarian] in the example: a role rule, not ownership
    assert "delete: ['librarian']" in service
    # The router checks the same rules first (401/403 before a body is validated), then hands the caller over.
    router = render_project(library)["src/resources/loans.ts"].decode()
    assert (
        "authorize(loansAccess.update), async (req, res)" in router and "loans.update(req.user, id" in router
    )


def test_a_spec_without_auth_has_no_users_tokens_or_auth_packages():
    files = render_project(load_spec(example_path("notes")))
    auth_files = [p for p in files if p.startswith("src/auth/") or "authenticate" in p or "authorize" in p]
    assert auth_files == [] and "test/auth.test.ts" not in files and "test/users.test.ts" not in files
    sql = files["drizzle/0000_init.sql"].decode() + files["drizzle/down/0000_init.sql"].decode()
    assert "users" not in sql and "refresh_tokens" not in sql
    for path, data in files.items():
        if path.startswith(("src/", "test/", ".env", "compose")):
            text = data.decode()
            assert not re.search(r"jwt|bearer|argon2|authorize|\.as\(", text, re.I), path
    pkg = json.loads(files["package.json"])
    assert not {"@node-rs/argon2", "jose", "express-rate-limit"} & set(pkg["dependencies"])
    lock = json.loads(files["package-lock.json"])
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]
    assert not [p for p in lock["packages"] if "argon2" in p or p.endswith(("/jose", "/ip-address"))]
    assert prune_lock(lock["packages"]) == lock["packages"], "every locked package is still needed"


def test_prune_lock_keeps_a_complete_lock_and_resolves_nested_packages(library):
    lock = json.loads(render_project(library)["package-lock.json"])
    assert prune_lock(lock["packages"]) == lock["packages"]
    nested = {
        "": {"dependencies": {"a": "1", "b": "1"}},
        "node_modules/a": {"dependencies": {"c": "2"}},
        "node_modules/a/node_modules/c": {},
        "node_modules/b": {"dependencies": {"c": "1"}},
        "node_modules/c": {},
        "node_modules/orphan": {},
    }
    assert set(prune_lock(nested)) == set(nested) - {"node_modules/orphan"}
    del nested[""]["dependencies"]["b"]
    assert set(prune_lock(nested)) == {"", "node_modules/a", "node_modules/a/node_modules/c"}


def test_references_to_owner_read_rows_are_checked_on_create_and_update():
    files = render_project(load_spec(example_path("projects")))
    service = files["src/services/tasks.ts"].decode()
    method = lambda name: service.split(f"  async {name}(", 1)[1].split("\n  async ", 1)[0]  # noqa: E731
    for name in ("create", "update"):
        assert "await this.checkReferences(body, me);" in method(name), name
    assert "eq(projects.owner_id, user.id)" in service and "path: 'body.project'" in service
    assert (
        "refuses a project that names a project the user cannot read" in files["test/tasks.test.ts"].decode()
    )
    assert "tasks.project" in files["README.md"].decode()
    # Public targets are left to the foreign key (409), so the library's routers have no such check.
    library_files = render_project(load_spec(example_path("library")))
    assert not [p for p, d in library_files.items() if b"checkReferences" in d]


def test_gitignore_covers_bimpl_output_and_the_pglite_dir(library):
    ignored = render_project(library)[".gitignore"].decode().split("\n")
    assert {".bimpl/runs/", ".bimpl/verify/", ".data/", "node_modules/", ".env"} <= set(ignored)
    assert ".bimpl/" not in ignored, "the manifest and merge base in .bimpl/ are committed"


@pytest.mark.parametrize("name", [*EXAMPLES, "alltypes"])
def test_drizzle_kit_snapshot_describes_what_the_sql_creates(name):
    files = render_project(load_spec(example_path(name)))
    sql = files["drizzle/0000_init.sql"].decode()
    snap = json.loads(files["drizzle/meta/0000_snapshot.json"])
    assert snap["version"] == "7" and snap["prevId"] == "0" * 8 + "-0000-0000-0000-" + "0" * 12
    created = dict(re.findall(r'CREATE TABLE "(\w+)" \(\n(.*?)\n\);', sql, re.S))
    assert sorted(f"public.{t}" for t in created) == sorted(snap["tables"])
    for table, body in created.items():
        entry = snap["tables"][f"public.{table}"]
        lines = [line.strip().rstrip(",") for line in body.splitlines()]
        columns = [line for line in lines if not line.startswith("CONSTRAINT")]
        assert [c.split('"')[1] for c in columns] == list(entry["columns"])
        for line in columns:
            col = entry["columns"][line.split('"')[1]]
            assert line.startswith(f'"{col["name"]}" {col["type"]}')
            assert line.endswith(" NOT NULL") == col["notNull"]
            assert (" PRIMARY KEY" in line) == col["primaryKey"]
            if "default" in col:
                default = col["default"]
                shown = default if isinstance(default, str) else json.dumps(default)
                assert f" DEFAULT {shown}" in line
            else:
                assert " DEFAULT " not in line
        uniques = {
            re.search(r'CONSTRAINT "(\w+)"', line)[1] for line in lines if line.startswith("CONSTRAINT")
        }
        assert uniques == set(entry["uniqueConstraints"])
        for fk in entry["foreignKeys"].values():
            assert (
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{fk["name"]}" FOREIGN KEY ("{fk["columnsFrom"][0]}") '
                f'REFERENCES "public"."{fk["tableTo"]}"("id") ON DELETE {fk["onDelete"]}'
            ) in sql
        for index in entry["indexes"].values():
            cols = ", ".join(f'"{c["expression"]}"' for c in index["columns"])
            assert f'CREATE INDEX "{index["name"]}" ON "{table}" USING btree ({cols})' in sql
    assert sql.count("FOREIGN KEY") == sum(len(t["foreignKeys"]) for t in snap["tables"].values())
    assert sql.count("CREATE INDEX") == sum(len(t["indexes"]) for t in snap["tables"].values())


def test_defaults_are_written_as_drizzle_kit_writes_them():
    snap = json.loads(render_project(load_spec(example_path("alltypes")))["drizzle/meta/0000_snapshot.json"])
    columns = snap["tables"]["public.things"]["columns"]
    keys = ("s", "t", "i", "n", "n2", "d", "b", "dt", "j", "jq", "arr", "aq", "an", "ai")
    assert {k: columns[k]["default"] for k in keys} == {
        "s": "'it''s'",
        "t": "'tab\there'",
        "i": -3,
        "n": 1.5,
        "n2": 2,
        "d": "'1.250'",
        "b": False,
        "dt": "'2024-02-29'",
        "j": """'{"b":1,"a":[1,"x",3]}'::jsonb""",  # the spec's key order, as JSON.stringify keeps it
        "jq": """'{"q":"it''s"}'::jsonb""",
        "arr": """'{"x","y z"}'""",
        "aq": """'{"say \\"hi\\"","it''s","back\\\\slash","`${x}`"}'""",
        "an": "'{1,0.5,0.00001}'",
        "ai": "'{}'",
    }
    schema = render_project(load_spec(example_path("alltypes")))["src/db/schema.ts"].decode()
    assert "import { sql } from 'drizzle-orm';" in schema
