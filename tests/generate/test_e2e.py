"""Per example: generate -> npm ci (shared) -> build with 0 type errors -> the generated vitest suite ->
boot on PGlite -> black-box HTTP checks -> graceful stop -> passwords in the database are argon2id."""

from __future__ import annotations

import json

import pytest

from .blackbox import run_checks
from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, EXAMPLES, build, node_eval, require_ok, run, serve

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
