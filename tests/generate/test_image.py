"""The generated Dockerfile, carried out without Docker (there is none here): each stage's COPY and RUN
instructions are replayed in a folder of their own, the final stage keeps only what its COPY lines bring,
and its CMD then has to serve the API in production mode and its HEALTHCHECK has to pass.

This proves what Docker would add nothing to: that the image's file set is complete (no file the runtime
needs is left behind, no devDependency is needed after `npm prune --omit=dev`) and that the commands work.
Base-image contents, users and ownership are Docker's part and stay untested."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from backend_implementor.generate import generate_project
from backend_implementor.spec.loader import load_spec

from .conftest import Server, example_path, free_port, require_ok, run

pytestmark = pytest.mark.slow


@dataclass
class Stage:
    name: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (instruction, arguments)


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    logical = text.replace("\\\n", " ")
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = args.split()
            stages.append(
                Stage(parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages)))
            )
        else:
            stages[-1].steps.append((instruction, args.strip()))
    return stages


def copy_into(sources: list[Path], dest: Path) -> None:
    for src in sources:
        assert src.exists(), f"COPY source missing: {src}"
        target = dest / src.name if dest.is_dir() or str(dest).endswith("/") else dest
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def replay(stage: Stage, root: Path, context: Path, built: dict[str, Path], env: dict[str, str]) -> Path:
    """Carry out one stage in `root` (the image's /); returns its WORKDIR."""
    workdir = root
    for instruction, args in stage.steps:
        if instruction == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        elif instruction == "COPY":
            words = shlex.split(args)
            flags = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("--")}
            paths = [w for w in words if not w.startswith("--")]
            src_root = built[flags["--from"]] if "--from" in flags else context
            sources = [src_root / p.lstrip("/") for p in paths[:-1]]
            dest = paths[-1]
            copy_into(sources, workdir / dest if dest not in ("./", ".") else workdir)
        elif instruction == "RUN":
            proc = subprocess.run(["bash", "-c", args], cwd=workdir, env=env, capture_output=True, text=True)
            require_ok(proc, f"RUN {args}")
        elif instruction not in ("USER", "EXPOSE", "HEALTHCHECK", "CMD"):
            pytest.fail(f"the test does not know the Dockerfile instruction {instruction}")
    return workdir


def test_the_image_runs_in_production_with_only_what_the_dockerfile_copies(tmp_path):
    context = tmp_path / "context"
    spec = load_spec(example_path("library"))
    generate_project(spec, context)
    stages = parse_dockerfile((context / "Dockerfile").read_text())
    assert [s.name for s in stages] == ["build", "1"]

    # No user named `node` here: ownership is Docker's business, so chown succeeds without effect.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "chown").write_text("#!/bin/sh\nexit 0\n")
    (shim / "chown").chmod(0o755)
    base_env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    built: dict[str, Path] = {}
    for stage in stages[:-1]:
        built[stage.name] = tmp_path / stage.name
        replay(stage, built[stage.name], context, built, dict(base_env))
    final = stages[-1]
    image_env = {k: v for k, v in base_env.items() if k not in ("NODE_ENV", "DATABASE_URL", "PGLITE_DIR")}
    app = replay(final, tmp_path / "image", context, built, image_env)

    # Nothing but what the final stage copied; the build tools did not survive the prune.
    assert sorted(p.name for p in app.iterdir()) == [
        ".data",
        "dist",
        "drizzle",
        "node_modules",
        "package.json",
    ]
    # (@types/* may stay: npm keeps drizzle-orm's optional peer @types/pg and its @types/node.)
    for dev in json.loads((context / "package.json").read_text())["devDependencies"]:
        if dev.startswith("@types/"):
            continue
        assert not (app / "node_modules" / dev).exists(), f"{dev} is a devDependency but is in the image"

    port = free_port()
    env = {**image_env, "PORT": str(port), "JWT_SECRET": "i" * 40, "ADMIN_EMAIL": "admin@example.com",
           "ADMIN_PASSWORD": "admin-password-123"}  # fmt: skip
    assert env["NODE_ENV"] == "production"
    cmd = json.loads(dict(final.steps)["CMD"])
    healthcheck = json.loads(dict(final.steps)["HEALTHCHECK"].split(" CMD ", 1)[1])
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(url=f"http://127.0.0.1:{port}", proc=proc, log=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(server.url):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert (app / ".data" / "pglite").is_dir()  # the embedded database, in the folder made for it
        # argon2's native binding, swagger-ui's assets and the migrations all made it into the image.
        user = {"email": "u@example.com", "password": "pw-123456789"}
        assert httpx.post(f"{server.url}/auth/register", json=user).status_code == 201
        login = httpx.post(f"{server.url}/auth/login", json=user)
        assert login.status_code == 200 and login.json()["access_token"]
        assert httpx.get(f"{server.url}/docs/swagger-ui-bundle.js").status_code == 200
        assert httpx.get(f"{server.url}/authors").json()["total"] == 0
        require_ok(run(healthcheck, app, env=env, timeout=30), "HEALTHCHECK")
    finally:
        code = server.stop()
    assert code == 0, log.read_text()[-3000:]  # SIGTERM: a graceful shutdown
    assert run(healthcheck, app, env=env, timeout=30).returncode == 1  # and it fails once the server is gone


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
