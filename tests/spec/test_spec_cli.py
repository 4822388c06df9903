"""`bimpl spec schema | check | from-openapi` through the real root CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend_implementor.cli import app
from backend_implementor.spec.schema import shipped_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BAXBENCH = Path("/work/shared/baxbench")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_schema_prints_the_shipped_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["spec", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == shipped_schema()


def test_check_ok(runner: CliRunner) -> None:
    result = runner.invoke(app, ["spec", "check", str(EXAMPLES / "library.yaml")])
    assert (result.exit_code, result.stdout) == (0, "ok: 3 resources, 10 fields\n")


def test_check_several_files(runner: CliRunner) -> None:
    files = [str(EXAMPLES / n) for n in ("blog.yaml", "inventory.yaml")]
    result = runner.invoke(app, ["spec", "check", *files])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{files[0]}: ok: 2 resources, 9 fields",
        f"{files[1]}: ok: 3 resources, 18 fields",
    ]


def test_check_errors_go_to_stderr_with_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: lib\nresources:\n  books:\n    fields:\n      author: {type: ref, to: autors}\n"
        "  authors:\n    fields: {name: {type: string}}\n"
    )
    result = runner.invoke(app, ["spec", "check", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{bad}:5: resources.books.fields.author.to: no resource named 'autors' (did you mean 'authors'?)\n"
    )


def test_check_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["spec", "check", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'none.yaml'}: cannot read: No such file or directory\n"


def test_check_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    proc = subprocess.run(
        [sys.executable, "-m", "backend_implementor", "spec", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{bad}:2: invalid YAML: ")


@pytest.mark.skipif(not BAXBENCH.exists(), reason="baxbench scenarios not available")
def test_from_openapi_writes_atomically_and_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "recipes.yaml"
    first = runner.invoke(app, ["spec", "from-openapi", str(BAXBENCH / "Recipes.yaml"), "-o", str(out)])
    assert first.exit_code == 0
    assert "skipped /recipes/upload: action path, not resource-shaped" in first.stderr
    assert first.stderr.rstrip().endswith(f"0 resources mapped, 5 path(s) skipped; wrote {out}")
    written = out.read_text()
    assert runner.invoke(app, ["spec", "check", str(out)]).stdout == "ok: 0 resources, 0 fields\n"
    assert [p.name for p in tmp_path.iterdir()] == ["recipes.yaml"]  # no temp file left behind

    out.write_text("mine\n")
    again = runner.invoke(app, ["spec", "from-openapi", str(BAXBENCH / "Recipes.yaml"), "-o", str(out)])
    assert again.exit_code == 1
    assert again.stderr == f"{out}: already exists (use --force to overwrite)\n"
    assert out.read_text() == "mine\n"

    forced = runner.invoke(
        app, ["spec", "from-openapi", str(BAXBENCH / "Recipes.yaml"), "-o", str(out), "--force"]
    )
    assert forced.exit_code == 0 and out.read_text() == written


def test_from_openapi_to_stdout(runner: CliRunner, tmp_path: Path) -> None:
    doc = tmp_path / "api.json"
    body = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}
    doc.write_text(
        json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "Notes"},
                "paths": {
                    "/notes": {"post": {"requestBody": {"content": {"application/json": {"schema": body}}}}},
                    "/notes/{id}": {"get": {}, "delete": {}},
                },
            }
        )
    )
    result = runner.invoke(app, ["spec", "from-openapi", str(doc)])
    assert result.exit_code == 0
    assert "      title: {type: string, required: true}\n" in result.stdout
    assert (
        "mapped  /notes: mapped to resource 'notes' (1 fields); the document has no list/update operation"
        in (result.stderr)
    )


def test_from_openapi_rejects_non_openapi(runner: CliRunner, tmp_path: Path) -> None:
    doc = tmp_path / "x.yaml"
    doc.write_text("swagger: '2.0'\n")
    result = runner.invoke(app, ["spec", "from-openapi", str(doc)])
    assert result.exit_code == 1
    assert result.stderr == f"{doc}: Swagger 2.0 is not supported; convert it to OpenAPI 3.x first\n"
