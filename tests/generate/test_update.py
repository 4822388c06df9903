"""`bimpl new` and `bimpl update` as a user runs them: what is replaced, merged, conflicted or left alone;
that nothing bimpl did not write is touched; refusals, dry runs and failed writes change nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend_implementor.cli import app
from backend_implementor.generate import project as project_module
from backend_implementor.generate.project import BASE, MANIFEST, sha256

from .conftest import example_path

runner = CliRunner()


def bimpl(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def tree(root: Path) -> dict[str, str]:
    """Every file under root (symlinks as their target), by path -> sha256."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = (
                "link:" + os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return out


def user_things(root: Path) -> None:
    """What a project that has been used holds beside bimpl's files."""
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "objects").mkdir()
    (root / ".git" / "objects" / "pack").write_bytes(os.urandom(64))
    (root / ".env").write_text("JWT_SECRET=mine-mine-mine-mine-mine-mine-mine\n")
    (root / ".data" / "pglite").mkdir(parents=True)
    (root / ".data" / "pglite" / "PG_VERSION").write_text("16\n")
    (root / ".data" / "pglite" / "base.bin").write_bytes(os.urandom(256))
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    (root / "src" / "custom").mkdir(parents=True)
    (root / "src" / "custom" / "hello.ts").write_text("export const hello = 'world';\n")
    (root / "notes.txt").write_text("mine\n")


USER_PATHS = (".git", ".env", ".data", "node_modules", "src/custom", "notes.txt")


def user_tree(root: Path) -> dict[str, str]:
    return {p: h for p, h in tree(root).items() if p.startswith(USER_PATHS)}


@pytest.fixture
def project(tmp_path) -> Path:
    out = tmp_path / "lib"
    result = bimpl("new", example_path("library"), "-o", out)
    assert result.exit_code == 0, result.output
    return out


def listed(output: str, kind: str) -> list[str]:
    """The paths the summary lists under `kind` (replaced, merged, ...)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(kind + " "))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("      "):
            break
        out.append(line.strip().split("  (")[0])
    return out


def edit_spec(root: Path, old: str, new: str) -> None:
    spec = root / "bimpl.yaml"
    text = spec.read_text()
    assert old in text, old
    spec.write_text(text.replace(old, new, 1))


COPIES = "      copies: {type: integer, min: 0, default: 1}\n"
WITH_PAGES = COPIES + "      pages: {type: integer, min: 1, default: 100}\n"


def test_a_new_project_keeps_its_spec_and_what_was_generated(project):
    assert (project / "bimpl.yaml").read_bytes() == example_path("library").read_bytes()
    manifest = json.loads((project / MANIFEST).read_text())
    base = json.loads((project / BASE).read_text())
    assert manifest["format"] == 1 and manifest["spec_sha256"] == sha256(
        (project / "bimpl.yaml").read_bytes()
    )
    for path, digest in manifest["files"].items():
        assert sha256((project / path).read_bytes()) == digest, path
        if not path.startswith("drizzle/"):
            assert base[path].encode() == (project / path).read_bytes()
    assert "drizzle/0000_init.sql" in manifest["files"] and "src/app.ts" in manifest["files"]


def test_update_without_changes_writes_nothing(project):
    before = tree(project)
    result = bimpl("update", project)
    assert result.exit_code == 0, result.output
    assert "no change, no migration" in result.output and "already up to date" in result.output
    assert tree(project) == before


def test_update_replaces_untouched_files_merges_edited_ones_and_keeps_the_users(project):
    user_things(project)
    users = user_tree(project)
    router = project / "src/services/books.ts"
    router.write_text("// our own note: keep me\n" + router.read_text())
    edit_spec(project, COPIES, WITH_PAGES)

    result = bimpl("update", project)
    assert result.exit_code == 0, result.output
    assert user_tree(project) == users, "nothing bimpl did not write is touched"
    text = router.read_text()
    assert text.startswith("// our own note: keep me\n") and "pages" in text, "merged: both changes"
    assert listed(result.output, "merged") == ["src/services/books.ts"]
    assert "src/db/schema.ts" in listed(result.output, "replaced")
    assert "pages" in (project / "src/db/schema.ts").read_text()
    migration = project / "drizzle" / "0001_add_books_pages.sql"
    assert migration.read_text() == 'ALTER TABLE "books" ADD COLUMN "pages" integer DEFAULT 100 NOT NULL;\n'
    assert (
        (project / "drizzle/down/0001_add_books_pages.sql")
        .read_text()
        .endswith('ALTER TABLE "books" DROP COLUMN "pages";\n')
    )
    journal = json.loads((project / "drizzle/meta/_journal.json").read_text())
    assert [e["tag"] for e in journal["entries"]] == ["0000_init", "0001_add_books_pages"]
    snap = json.loads((project / "drizzle/meta/0001_snapshot.json").read_text())
    first = json.loads((project / "drizzle/meta/0000_snapshot.json").read_text())
    assert snap["prevId"] == first["id"] and "pages" in snap["tables"]["public.books"]["columns"]
    # The manifest now describes the new render; the merged file counts as the user's edit of it.
    manifest = json.loads((project / MANIFEST).read_text())
    assert manifest["files"]["src/db/schema.ts"] == sha256((project / "src/db/schema.ts").read_bytes())
    assert manifest["files"]["src/services/books.ts"] != sha256(router.read_bytes())
    again = bimpl("update", project)
    assert again.exit_code == 0 and "already up to date" in again.output, again.output
    assert router.read_text() == text


def test_earlier_migrations_are_never_rewritten(project):
    init = {p: (project / "drizzle" / p).read_bytes() for p in ("0000_init.sql", "down/0000_init.sql")}
    edit_spec(project, COPIES, WITH_PAGES)
    assert bimpl("update", project).exit_code == 0
    edit_spec(project, "      pages: {type: integer, min: 1, default: 100}\n", "")
    result = bimpl("update", project, "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert {p: (project / "drizzle" / p).read_bytes() for p in init} == init
    assert (project / "drizzle/0001_add_books_pages.sql").exists()
    assert (
        project / "drizzle/0002_drop_books_pages.sql"
    ).read_text() == 'ALTER TABLE "books" DROP COLUMN "pages";\n'


def test_a_conflict_is_marked_in_the_file_and_exits_1(project):
    schemas = project / "src/schemas.ts"
    text = schemas.read_text()
    anchor = "copies: z.number().int().min(0)"
    assert anchor in text
    schemas.write_text(text.replace(anchor, "copies: z.number().int().min(1)", 1))
    edit_spec(
        project,
        "copies: {type: integer, min: 0, default: 1}",
        "copies: {type: integer, min: 0, max: 99, default: 1}",
    )
    result = bimpl("update", project)
    assert result.exit_code == 1
    assert "conflicted" in result.output and "src/schemas.ts" in result.output
    merged = schemas.read_text()
    assert "<<<<<<< src/schemas.ts (yours)" in merged and ">>>>>>> src/schemas.ts (bimpl update)" in merged
    assert "min(1)" in merged and "max(99)" in merged, "both sides are in the file"


def test_an_edited_file_bimpl_has_nothing_new_for_is_kept_as_it_is(project):
    readme = project / "src/resources/loans.ts"
    readme.write_text(readme.read_text() + "// mine\n")
    edit_spec(project, COPIES, WITH_PAGES)
    result = bimpl("update", project)
    assert result.exit_code == 0
    assert readme.read_text().endswith("// mine\n")
    assert "src/resources/loans.ts" not in result.output, "bimpl's render did not change: nothing to say"


def test_files_no_longer_generated_are_removed_only_when_untouched(project):
    spec = project / "bimpl.yaml"
    text = spec.read_text()
    start = text.index("  loans:\n")
    spec.write_text(text[:start])
    (project / "test/loans.test.ts").write_text("// my own loans test\n")
    result = bimpl("update", project, "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert not (project / "src/resources/loans.ts").exists()
    assert (project / "test/loans.test.ts").read_text() == "// my own loans test\n"
    assert "no longer generated, and you edited it" in result.output
    assert "loans: drop table" in result.output


def test_destructive_changes_are_refused_and_nothing_is_written(project):
    user_things(project)
    edit_spec(project, "      note: {type: text, private: false}\n", "")
    before = tree(project)
    result = bimpl("update", project)
    assert result.exit_code == 1
    assert (
        "drops column loans.note and its values" in result.output and "--allow-destructive" in result.output
    )
    assert "Traceback" not in result.output
    assert tree(project) == before


def test_dry_run_prints_the_plan_and_the_diff_and_writes_nothing(project):
    edit_spec(project, COPIES, WITH_PAGES)
    before = tree(project)
    result = bimpl("update", project, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Would update library" in result.output
    assert "+++ b/drizzle/0001_add_books_pages.sql" in result.output
    assert '+ALTER TABLE "books" ADD COLUMN "pages"' in result.output
    assert "--- a/src/db/schema.ts" in result.output
    assert tree(project) == before


def test_a_failed_write_leaves_the_project_as_it_was(project, monkeypatch):
    user_things(project)
    edit_spec(project, COPIES, WITH_PAGES)
    before = tree(project)
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(project_module.os, "replace", flaky)
    result = bimpl("update", project)
    assert (
        result.exit_code == 1
        and "No space left on device" in result.output
        and "nothing was changed" in result.output
    )
    assert len(calls) == 5
    assert tree(project) == before
    assert not [p for p in tree(project) if p.endswith(".bimpl-tmp")]


def test_update_with_spec_file_makes_it_the_projects_spec(project, tmp_path):
    other = tmp_path / "next.yaml"
    other.write_text((project / "bimpl.yaml").read_text().replace(COPIES, WITH_PAGES))
    result = bimpl("update", project, "--spec", other)
    assert result.exit_code == 0, result.output
    assert (project / "bimpl.yaml").read_bytes() == other.read_bytes()
    assert "bimpl.yaml is now a copy of" in result.output


def test_new_force_on_a_bimpl_project_updates_it(project, tmp_path):
    user_things(project)
    users = user_tree(project)
    other = tmp_path / "next.yaml"
    other.write_text((project / "bimpl.yaml").read_text().replace(COPIES, WITH_PAGES))
    result = bimpl("new", other, "-o", project, "--force")
    assert result.exit_code == 0, result.output
    assert user_tree(project) == users
    assert (project / "drizzle/0001_add_books_pages.sql").exists()


def test_new_force_refuses_a_folder_bimpl_did_not_make(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    user_things(out)
    (out / "spec.yaml").write_bytes(example_path("library").read_bytes())
    before = tree(out)
    result = bimpl("new", example_path("library"), "-o", out, "--force")
    assert result.exit_code == 1
    assert "not a bimpl project" in result.output and "Nothing was changed" in result.output
    assert tree(out) == before


def test_new_into_the_current_folder_beside_git_and_the_spec(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "spec.yaml").write_bytes(example_path("library").read_bytes())
    monkeypatch.chdir(tmp_path)
    result = bimpl("new", "spec.yaml", "-o", ".")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "spec.yaml").read_bytes() == (tmp_path / "bimpl.yaml").read_bytes()
    assert (tmp_path / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (tmp_path / "src/app.ts").exists()


def test_update_errors_name_the_problem(tmp_path, project):
    assert "not a bimpl project" in bimpl("update", tmp_path).output
    assert "no such folder" in bimpl("update", tmp_path / "nope").output
    (project / "bimpl.yaml").write_text(
        "name: library\nresources:\n  books:\n    fields: {x: {type: nope}}\n"
    )
    result = bimpl("update", project)
    assert result.exit_code == 1 and "bimpl.yaml:4" in result.output and "Traceback" not in result.output
    (project / "bimpl.yaml").write_bytes(example_path("library").read_bytes())
    (project / "drizzle/meta/0000_snapshot.json").write_text("{not json")
    result = bimpl("update", project)
    assert result.exit_code == 1 and "drizzle/meta/0000_snapshot.json: cannot be read" in result.output
    assert "Traceback" not in result.output


def test_turning_graphql_on_adds_its_files_and_packages_and_no_migration(project):
    edit_spec(
        project, "description: Lending library API\n", "description: Lending library API\ngraphql: true\n"
    )
    result = bimpl("update", project)
    assert result.exit_code == 0, result.output
    assert "no change, no migration" in result.output
    new = listed(result.output, "new")
    assert {
        "schema.graphql",
        "src/graphql/router.ts",
        "src/graphql/resolvers.ts",
        "test/graphql.test.ts",
    } <= set(new)
    assert "author: Author" in (project / "schema.graphql").read_text()
    package = json.loads((project / "package.json").read_text())
    lock = json.loads((project / "package-lock.json").read_text())
    assert {"graphql", "graphql-http", "dataloader"} <= set(package["dependencies"])
    assert "node_modules/graphql-http" in lock["packages"]
    assert not list((project / "drizzle").glob("0001_*"))
    # And off again: the files bimpl made for it go, the packages with them.
    edit_spec(project, "graphql: true\n", "")
    off = bimpl("update", project)
    assert off.exit_code == 0, off.output
    assert not (project / "schema.graphql").exists() and not (project / "src/graphql").exists()
    assert "graphql" not in json.loads((project / "package.json").read_text())["dependencies"]
