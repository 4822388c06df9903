"""Detection, reporter parsing, inventory and report rendering: no processes started."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from backend_implementor.verify import inventory
from backend_implementor.verify.auth import AuthConfig, AuthOptionError, detect_auth, parse_auth_option
from backend_implementor.verify.contract import parse_junit, without_opaque_tokens
from backend_implementor.verify.findings import Evidence, Finding
from backend_implementor.verify.openapi_doc import operations
from backend_implementor.verify.project import ProjectError, detect_project
from backend_implementor.verify.report import SCHEMA_FILE, Report, StageResult, render_markdown
from backend_implementor.verify.testresults import ReporterError, parse_jest_json, parse_report_file

DATA = Path(__file__).parent / "data"


def write_pkg(root: Path, pkg: dict, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps(pkg))
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# ---------------------------------------------------------------- project detection


@pytest.mark.parametrize(
    ("lockfile", "manager"),
    [("package-lock.json", "npm"), ("yarn.lock", "yarn"), ("pnpm-lock.yaml", "pnpm"), (None, "npm")],
)
def test_package_manager_from_lockfile(tmp_path, monkeypatch, lockfile, manager):
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    write_pkg(
        tmp_path, {"name": "x", "dependencies": {"express": "^5"}}, {lockfile: ""} if lockfile else None
    )
    p = detect_project(tmp_path)
    assert (p.package_manager, p.lockfile) == (manager, lockfile)
    assert p.has_dependencies


def test_missing_package_manager_falls_back_to_npm(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    write_pkg(tmp_path, {"name": "x"}, {"pnpm-lock.yaml": ""})
    p = detect_project(tmp_path)
    assert p.package_manager == "npm"
    assert "pnpm is not installed" in p.notes[0]


def test_fixture_shaped_app_has_nothing_to_install(tmp_path):
    p = detect_project(write_pkg(tmp_path, {"scripts": {"start": "node app.js"}}, {"app.js": "//"}))
    assert not p.has_dependencies
    assert p.test_script is None and p.main == "app.js"
    assert not p.bimpl_generated


def test_npm_placeholder_test_script_is_no_test_suite(tmp_path):
    p = detect_project(
        write_pkg(tmp_path, {"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})
    )
    assert p.test_script is None


@pytest.mark.parametrize(
    ("pkg", "files", "runner"),
    [
        ({"scripts": {"test": "vitest run"}}, {}, "vitest"),
        ({"scripts": {"test": "jest --coverage"}}, {}, "jest"),
        ({"scripts": {"test": "npm run t2"}, "devDependencies": {"vitest": "^3"}}, {}, "vitest"),
        ({"scripts": {"test": "node --test"}}, {}, None),
    ],
)
def test_runner_detection(tmp_path, pkg, files, runner):
    assert detect_project(write_pkg(tmp_path, pkg, files)).test_runner == runner


@pytest.mark.parametrize(
    ("files", "pkg_extra", "reason"),
    [
        ({".bimpl.json": "{}"}, {}, ".bimpl.json marker"),
        ({}, {"bimpl": {"spec": "library.yaml"}}, 'package.json "bimpl" field'),
        ({"src/app.ts": "", "drizzle/0000_init.sql": ""}, {}, "layout: src/app.ts + drizzle/"),
    ],
)
def test_bimpl_project_recognised(tmp_path, files, pkg_extra, reason):
    p = detect_project(write_pkg(tmp_path, {"name": "lib", **pkg_extra}, files))
    assert p.bimpl_generated and p.bimpl_reason == reason


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no package.json"),
        (lambda d: (d / "package.json").write_text("{nope"), "invalid JSON at line 1"),
        (lambda d: (d / "package.json").write_text("[]"), "expected a JSON object"),
        (lambda d: (d / "package.json").write_text('{"scripts": ["x"]}'), "`scripts` must be an object"),
    ],
)
def test_bad_projects_give_clear_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(ProjectError, match=message):
        detect_project(tmp_path)


def test_path_that_is_a_file_or_missing(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ProjectError, match="not a directory"):
        detect_project(tmp_path / "f")
    with pytest.raises(ProjectError, match="no such directory"):
        detect_project(tmp_path / "missing")


def test_run_script_cmd_per_manager(tmp_path):
    p = detect_project(write_pkg(tmp_path, {"scripts": {"test": "vitest run"}}))
    assert p.run_script_cmd("test", ["--reporter=json"]) == [
        "npm",
        "run",
        "--silent",
        "test",
        "--",
        "--reporter=json",
    ]
    p.package_manager = "pnpm"
    assert p.run_script_cmd("test", ["--x"]) == ["pnpm", "run", "test", "--x"]


# ---------------------------------------------------------------- test reporters (real reporter output)


def test_vitest_json_sample():
    s = parse_report_file(DATA / "vitest-sample.json", runner="vitest", root=Path("/tmp/samp/vt"))
    assert (s.passed, s.failed, s.skipped, s.total) == (1, 2, 2, 5)
    names = [(f.file, f.name) for f in s.failures]
    assert ("test/a.test.js", "books › rejects bad isbn") in names
    assert ("test/broken.test.js", "(test file failed to run)") in names
    assert "expected 2 to be 3" in s.failures[0].message
    assert "missing.js" in s.failures[1].message


def test_jest_json_sample():
    s = parse_report_file(DATA / "jest-sample.json", runner="jest")
    assert (s.passed, s.failed, s.skipped) == (1, 2, 2)
    assert s.failures[0].name == "books › rejects bad isbn"
    assert "Expected: 3" in s.failures[0].message
    assert s.failures[1].name == "(test file failed to run)"
    assert "Cannot find module" in s.failures[1].message


def test_reporter_errors(tmp_path):
    with pytest.raises(ReporterError, match="wrote no JSON report"):
        parse_report_file(tmp_path / "none.json", runner="vitest")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ReporterError, match="invalid JSON"):
        parse_report_file(tmp_path / "bad.json", runner="vitest")
    with pytest.raises(ReporterError, match="no testResults"):
        parse_jest_json({"numTotalTests": 1}, runner="jest")


# ---------------------------------------------------------------- schemathesis JUnit (real st 4.x output)


def test_schemathesis_junit_sample():
    r = parse_junit(DATA / "schemathesis-junit.xml")
    assert (r.operations, r.failed_operations) == (2, 2)
    boom = next(f for f in r.failures if f.operation == "POST /boom")
    assert boom.checks == ["ST101 Server error", "ST103 Undocumented status code"]
    assert boom.status == 500
    assert boom.request.startswith("curl -X POST") and "/boom" in boom.request
    assert "Authorization: [Filtered]" in boom.request


def test_schemathesis_junit_with_a_crash():
    r = parse_junit(DATA / "schemathesis-junit-crash.xml")
    assert r.operations == 2  # the "Server" pseudo case is not an operation
    (crash,) = r.failures
    assert (crash.operation, crash.checks) == ("POST /crash", ["Network Error"])
    assert crash.request.startswith("curl -X TRACE") and r.failed_operations == 1
    assert len(r.errors) == 1 and r.errors[0].startswith("Server: Server Unavailable")


def test_a_schemathesis_runtime_error_is_untested_not_an_api_failure():
    """Its stateful phase crashed inside requests (an int cookie), with a curl line like a dropped
    connection's: the API did nothing wrong, but the phase's remaining steps never ran."""
    r = parse_junit(DATA / "schemathesis-junit-runtime-error.xml")
    assert (r.operations, r.failed_operations, r.failures) == (1, 0, [])
    assert r.errors == [
        "Stateful tests: schemathesis crashed (AttributeError: 'int' object has no attribute 'startswith');"
        " the rest of this phase did not run"
    ]


# ---------------------------------------------------------------- auth option and detection


def test_parse_auth_option():
    a = parse_auth_option("register=/signup,login=/login,user=username,password=pw,token=token")
    assert (a.register_path, a.login_path, a.user_field, a.password_field, a.token_key) == (
        "/signup", "/login", "username", "pw", "token",
    )  # fmt: skip
    assert a.source == "--auth"
    # Only a login path given: registration keeps bimpl's path (verify has no user of its own to log in).
    assert parse_auth_option("login=/session") == AuthConfig(login_path="/session")
    assert parse_auth_option("register=/signup,login=/login,extra.name=Bob").register_extra == {"name": "Bob"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("login", "key=value"),
        ("nope=1", "unknown key 'nope'"),
        ("login=session", "starting with '/'"),
    ],
)
def test_bad_auth_option(text, message):
    with pytest.raises(AuthOptionError, match=message):
        parse_auth_option(text)


def test_detect_auth_from_openapi():
    bimpl = {"openapi": "3.1.0", "paths": {"/auth/register": {"post": {}}, "/auth/login": {"post": {}}}}
    assert detect_auth(bimpl) == AuthConfig() and detect_auth(bimpl).source == "bimpl convention"
    assert detect_auth(None).source == "bimpl convention"
    other = {
        "openapi": "3.0.3",
        "paths": {
            "/signup": {"post": {}},
            "/login": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Creds"}}}}}},
        },
        "components": {"schemas": {"Creds": {"properties": {"username": {}, "password": {}}}}},
    }  # fmt: skip
    a = detect_auth(other)
    assert (a.register_path, a.login_path, a.user_field, a.source) == (
        "/signup", "/login", "username", "OpenAPI document",
    )  # fmt: skip
    assert detect_auth({"openapi": "3.0.3", "paths": {"/items": {"get": {}}}}) is None
    assert detect_auth({"openapi": "3.0.3", "paths": ["not", "a", "map"]}) is None


# ---------------------------------------------------------------- inventory


def test_endpoints_auth_from_openapi():
    doc = {
        "openapi": "3.1.0",
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/books": {"get": {"security": [], "summary": "List"}, "post": {}},
            "/books/{id}": {"delete": {"security": [{}, {"bearer": []}]}},
        },
    }
    eps = {(e["method"], e["path"]): e["auth"] for e in inventory.endpoints_from_openapi(doc)}
    assert eps == {
        ("GET", "/books"): "none",
        ("POST", "/books"): "required (bearer)",
        ("DELETE", "/books/{id}"): "none",
    }
    # The probes read the same rule: an optional ({}) alternative leaves an operation unprotected.
    assert {(o.method, o.path): o.secured for o in operations(doc)} == {
        ("GET", "/books"): False,
        ("POST", "/books"): True,
        ("DELETE", "/books/{id}"): False,
    }
    bare = {"openapi": "3.0.0", "paths": {"/x": {"get": {}}}}
    assert inventory.endpoints_from_openapi(bare)[0]["auth"] == "not declared"


def test_endpoints_from_source_scan(tmp_path):
    (tmp_path / "app.js").write_text("app.get('/a', h)\nrouter.post(\"/b/:id\", h)\napp.get('/a', h2)\n")
    got = inventory.endpoints(None, tmp_path)
    assert "best-effort" in got["source"]
    assert [(e["method"], e["path"]) for e in got["items"]] == [("GET", "/a"), ("POST", "/b/:id")]


def test_schema_from_drizzle_migrations(tmp_path):
    (tmp_path / "drizzle").mkdir()
    (tmp_path / "drizzle" / "0000_init.sql").write_text(
        'CREATE TABLE IF NOT EXISTS "books" (\n  "id" uuid PRIMARY KEY NOT NULL,\n  "title" varchar(300) NOT NULL,\n'
        '  "price" numeric(10, 2),\n  CONSTRAINT "books_isbn_unique" UNIQUE("isbn")\n);\n'
        '--> statement-breakpoint\nCREATE INDEX IF NOT EXISTS "books_title_idx" ON "books" USING btree ("title");\n'
        'CREATE UNIQUE INDEX "u" ON public."books" ("isbn");\n'
    )
    (tmp_path / "drizzle" / "0000_init.down.sql").write_text('DROP TABLE "books";')
    s = inventory.schema(tmp_path)
    assert s["migrations"] == ["drizzle/0000_init.down.sql", "drizzle/0000_init.sql"]
    (books,) = s["tables"]
    assert [c["name"] for c in books["columns"]] == ["id", "title", "price"]
    assert books["columns"][2]["type"] == "numeric(10, 2)"
    assert books["constraints"] == ['CONSTRAINT "books_isbn_unique" UNIQUE("isbn")']
    assert [(i["name"], i["table"], i["unique"]) for i in s["indexes"]] == [
        ("books_title_idx", "books", False), ("u", "books", True),
    ]  # fmt: skip
    assert "SQL migrations" in s["source"]


def test_schema_from_drizzle_ts_and_inline_sql(tmp_path):
    (tmp_path / "src" / "db").mkdir(parents=True)
    (tmp_path / "src" / "db" / "schema.ts").write_text(
        "export const books = pgTable('books', {\n  id: uuid('id').primaryKey(),\n  title: varchar('title'),\n"
        "}, (t) => [index('books_title_idx').on(t.title)]);\n"
    )
    (tmp_path / "app.js").write_text(
        "db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)`)"
    )
    s = inventory.schema(tmp_path)
    tables = {t["name"]: [c["name"] for c in t["columns"]] for t in s["tables"]}
    assert tables == {"books": ["id", "title"], "users": ["id", "email"]}
    assert s["indexes"][0]["name"] == "books_title_idx"
    assert "best-effort" in s["source"]
    assert inventory.schema(None)["source"].startswith("unavailable")


def test_middleware_in_source_order(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.ts").write_text(
        "const app = express();\napp.disable('x-powered-by');\napp.use(helmet());\n"
        "app.use(express.json({ limit: '100kb' }));\napp.use('/books', booksRouter(db));\napp.use(errorHandler);\n"
    )
    mw = inventory.middleware(tmp_path, "src/app.ts")
    got = [(i["order"], i["call"], i["mount"], i["handler"], i["line"]) for i in mw["items"]]
    assert got == [
        (1, "app.disable", None, "'x-powered-by'", 2),
        (2, "app.use", None, "helmet()", 3),
        (3, "app.use", None, "express.json({ limit: '100kb' })", 4),
        (4, "app.use", "/books", "booksRouter(db)", 5),
        (5, "app.use", None, "errorHandler", 6),
    ]
    assert inventory.middleware(tmp_path, None)["items"] == []


# ---------------------------------------------------------------- report


def _sample_report(**kw) -> Report:
    r = Report(mode="project", target="/p", tool_version="0.1.0", started_at="2026-01-01T00:00:00Z", **kw)
    r.stages = [
        StageResult("install", "skipped", 0, "no dependencies"),
        StageResult("boot", "passed", 0.5, "ok"),
    ]
    r.endpoints = {"source": "OpenAPI document", "items": [{"method": "GET", "path": "/a|b", "auth": "none",
                                                           "summary": ""}]}  # fmt: skip
    return r


def test_exit_codes():
    assert _sample_report().exit_code == 0
    r = _sample_report()
    r.stages.append(StageResult("test", "failed", 1, "1 failed"))
    assert (r.exit_code, r.status) == (1, "failed")
    r = _sample_report()
    r.findings.append(Finding("x", 89, "SQLi", "high", "bind parameters"))
    assert r.exit_code == 1
    r.fatal = "the backend did not boot"
    assert (r.exit_code, r.status) == (2, "error")


def test_report_json_matches_shipped_schema_and_markdown(tmp_path):
    r = _sample_report()
    r.findings = [
        Finding("hdr", 693, "Missing security headers", "low", "use helmet()"),
        Finding("sqli-query", 89, "SQL injection in query parameter 'title'", "critical", "bind parameters",
                Evidence(request="GET /books?title=' OR '1'='1", response="200 OK\n[{...}]")),
    ]  # fmt: skip
    r.tests = {"runner": "vitest", "passed": 3, "failed": 1, "skipped": 0, "total": 4, "source": "reporter-json",
               "note": "", "failures": [{"name": "a › b", "file": "test/a.test.ts", "message": "boom"}]}  # fmt: skip
    j, m = r.write(tmp_path)
    data = json.loads(j.read_text())
    jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text()))
    assert data["schema_version"] == 2
    assert [f["cwe"] for f in data["findings"]] == [89, 693]  # critical first
    assert data["summary"]["cwes"] == [89, 693]
    md = m.read_text()
    for heading in (
        "## 1. Endpoints",
        "## 2. Schema",
        "## 3. Middleware",
        "## 4. Tests",
        "## Findings",
        "## Stages",
    ):
        assert heading in md
    assert md.index("CWE-89") < md.index("CWE-693")
    assert "`/a\\|b`" in md  # a pipe in a path does not break the table
    assert "GET /books?title=' OR '1'='1" in md
    assert "`test/a.test.ts` › a › b: boom" in md
    assert render_markdown(r) == md


def test_report_write_replaces_atomically(tmp_path, monkeypatch):
    import os

    from backend_implementor import atomic as atomic_mod
    from backend_implementor.verify import report as report_mod

    r = _sample_report()
    j, m = r.write(tmp_path)
    first_json, first_md = j.read_text(), m.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]  # no temp files left
    assert os.stat(j).st_mode & 0o777 == 0o666 & ~atomic_mod._UMASK  # not mkstemp's 0600

    # The new report is rendered before anything is written: a rendering error leaves both files as they were.
    r.findings.append(Finding("x", 89, "SQLi", "high", "bind parameters"))
    monkeypatch.setattr(report_mod, "render_markdown", lambda _r: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        r.write(tmp_path)
    assert (j.read_text(), m.read_text()) == (first_json, first_md)
    monkeypatch.undo()

    # A failing write (disk full) removes its temporary file and keeps the old report.
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, _text):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError, match="No space"):
        r.write(tmp_path)
    assert j.read_text() == first_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
    monkeypatch.undo()

    r.write(tmp_path)
    assert json.loads(j.read_text())["summary"]["cwes"] == [89]
    assert "CWE-89" in m.read_text()


@pytest.mark.parametrize(
    ("pattern", "accepts"),
    [
        (r"^\d{1,8}(\.\d{1,2})?$", r"[0-9]{1,8}(\.[0-9]{1,2})?"),  # a decimal with no sign
        (r"^\w{3,6}$", r"[A-Za-z0-9_]{3,6}"),
        (r"^[A-Z]{3}-\d{4}$", r"[A-Z]{3}-[0-9]{4}"),
    ],
)
def test_values_for_a_pattern_match_it_as_ecmascript_reads_it(pattern, accepts):
    # Python's \d takes any Unicode digit ("٣"), ECMAScript's only 0-9: the server would refuse the value.
    import re

    from backend_implementor.verify.openapi_doc import example_value

    for _ in range(40):
        value = example_value(None, {"type": "string", "pattern": pattern}, "price")
        assert re.fullmatch(accepts, value, re.ASCII), value


def test_continuation_tokens_are_left_out_of_the_fuzzed_document():
    """A cursor the server did not hand out is rightly a 400, so schemathesis must not make one up; other
    parameters, and a `cursor` that is not a free string, stay."""
    doc = {
        "openapi": "3.1.0",
        "components": {"parameters": {"After": {"name": "starting_after", "in": "query", "schema": {"type": "string"}}}},
        "paths": {
            "/books": {
                "get": {"parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}},
                    {"name": "title", "in": "query", "schema": {"type": "string"}},
                    {"$ref": "#/components/parameters/After"},
                ]},
            },
            "/events": {"get": {"parameters": [
                {"name": "cursor", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "cursor", "in": "header", "schema": {"type": "string"}},
            ]}},
        },
    }  # fmt: skip
    fuzzed, left_out = without_opaque_tokens(doc)
    assert left_out == ["GET /books ?cursor", "GET /books ?starting_after"]
    assert [p["name"] for p in fuzzed["paths"]["/books"]["get"]["parameters"]] == ["title"]
    assert fuzzed["paths"]["/events"] == doc["paths"]["/events"]
    assert len(doc["paths"]["/books"]["get"]["parameters"]) == 3  # the original is untouched
