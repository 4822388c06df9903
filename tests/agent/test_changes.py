from backend_implementor.agent import changes, deliverables


def test_diff_counts_lines_and_skips_vendor_dirs(tmp_path):
    (tmp_path / "a.ts").write_text("one\ntwo\nthree\n")
    (tmp_path / "gone.ts").write_text("x\ny\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    run_dir = tmp_path / ".bimpl" / "runs" / "r"
    run_dir.mkdir(parents=True)
    changes.save_baseline(changes.snapshot(tmp_path), run_dir)

    (tmp_path / "a.ts").write_text("one\nTWO\nthree\nfour\n")
    (tmp_path / "gone.ts").unlink()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "new.ts").write_text("export const a = 1;\n")
    (tmp_path / "node_modules" / "dep.js").write_text("ignored\n")
    (tmp_path / "blob.bin").write_bytes(b"\0\1\3")

    result = {c.path: c for c in changes.diff(changes.load_baseline(run_dir), tmp_path)}
    assert set(result) == {"a.ts", "gone.ts", "src/new.ts", "blob.bin"}
    assert (result["a.ts"].status, result["a.ts"].added, result["a.ts"].removed) == ("modified", 2, 1)
    assert (result["gone.ts"].status, result["gone.ts"].removed) == ("deleted", 2)
    assert (result["src/new.ts"].status, result["src/new.ts"].added) == ("added", 1)
    assert (result["blob.bin"].status, result["blob.bin"].added) == ("modified", 0)


def test_deliverables_evidence_from_paths_and_content(tmp_path):
    files = {
        "src/resources/books.ts": "router.get('/', h)",
        "drizzle/0000_init.sql": "CREATE TABLE books ();",
        "src/middleware/authenticate.ts": "export function authenticate(req, res, next) {}",
        "test/books.test.ts": "describe('books', () => {})",
        "src/requestId.ts": "export const ok = (id) => SAFE_ID.test(id);",  # a regex's test(), not a test
        "src/smoke.ts": "test ('boots', () => {});",
        "src/misc.ts": "export const x = 1;",
        "docs/notes.md": "hello",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    changed = [changes.FileChange(p, "added", 1, 0) for p in files]
    wanted = {
        "api-endpoints": "routes",
        "database-schemas": "tables",
        "middleware": "auth",
        "tests": "tests",
        "release-notes": "notes",
        "docs": "documentation",
    }
    result = {d.key: d for d in deliverables.check(wanted, changed, tmp_path, {"tests": "12 tests"})}
    assert result["api-endpoints"].files == ["src/resources/books.ts"]
    assert result["database-schemas"].files == ["drizzle/0000_init.sql"]
    assert result["middleware"].files == ["src/middleware/authenticate.ts"]
    assert result["tests"].files == ["test/books.test.ts", "src/smoke.ts"]  # by path first, then by content
    assert result["tests"].claim == "12 tests"
    assert result["release-notes"].files == ["docs/notes.md"]  # unknown key: matched by its words
    assert result["docs"].files == ["docs/notes.md"]


def test_missing_deliverable_is_reported_missing(tmp_path):
    (tmp_path / "README.md").write_text("x")
    result = deliverables.check(
        {"tests": "tests"}, [changes.FileChange("README.md", "added", 1, 0)], tmp_path, {}
    )
    assert result[0].produced is False
