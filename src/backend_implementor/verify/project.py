"""What kind of Node project lies at PATH: package manager, scripts, test runner, entry point."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOCKFILES = {
    "package-lock.json": "npm",
    "npm-shrinkwrap.json": "npm",
    "pnpm-lock.yaml": "pnpm",
    "yarn.lock": "yarn",
}
# `npm init` writes this placeholder; it is not a test suite.
NPM_PLACEHOLDER_TEST = 'echo "Error: no test specified" && exit 1'


class ProjectError(Exception):
    """PATH is not something verify can work on (message is shown to the user as is)."""


@dataclass
class Project:
    root: Path
    name: str
    package_manager: str  # npm | pnpm | yarn
    lockfile: str | None
    scripts: dict[str, str]
    dependencies: dict[str, str]
    dev_dependencies: dict[str, str]
    typescript: bool  # a tsconfig.json is present
    test_runner: str | None  # vitest | jest | None (unknown or none)
    bimpl_generated: bool
    bimpl_reason: str = ""
    main: str | None = None  # the entry file, when known (for middleware and route scanning)
    notes: list[str] = field(default_factory=list)

    @property
    def has_dependencies(self) -> bool:
        return bool(self.dependencies or self.dev_dependencies)

    @property
    def test_script(self) -> str | None:
        script = self.scripts.get("test", "").strip()
        return script if script and script != NPM_PLACEHOLDER_TEST else None

    def run_script_cmd(self, script: str, extra: list[str] | None = None) -> list[str]:
        """The command that runs package.json script `script` with `extra` arguments appended."""
        extra = extra or []
        if self.package_manager == "npm":
            return ["npm", "run", "--silent", script, *(["--", *extra] if extra else [])]
        # pnpm and yarn pass arguments after the script name straight to it.
        return [self.package_manager, "run", script, *extra]

    def bin(self, name: str) -> Path | None:
        """A locally installed executable (node_modules/.bin), looking upward like Node does."""
        for d in (self.root, *self.root.parents):
            cand = d / "node_modules" / ".bin" / name
            if cand.exists():
                return cand
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"] = str(self.root)
        d.pop("dependencies")
        d.pop("dev_dependencies")
        d["dependency_count"] = len(self.dependencies) + len(self.dev_dependencies)
        return d


def _read_package_json(root: Path) -> dict[str, Any]:
    pj = root / "package.json"
    try:
        data = json.loads(pj.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(
            f"{root}: no package.json here; is this a Node project? (for a running server use --url)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{pj}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{pj}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ProjectError(f"{pj}: expected a JSON object")
    return data


def _dict_of_str(value: Any, what: str, pj: Path) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ProjectError(f"{pj}: `{what}` must be an object of strings")
    return dict(value)


def _detect_bimpl(root: Path, pkg: dict[str, Any]) -> tuple[bool, str]:
    if (root / ".bimpl.json").is_file():
        return True, ".bimpl.json marker"
    if isinstance(pkg.get("bimpl"), dict | str):
        return True, 'package.json "bimpl" field'
    if (root / "src" / "app.ts").is_file() and (root / "drizzle").is_dir():
        return True, "layout: src/app.ts + drizzle/"
    return False, ""


def _detect_runner(scripts: dict[str, str], deps: dict[str, str]) -> str | None:
    test = scripts.get("test", "")
    for runner in ("vitest", "jest"):
        if runner in test:
            return runner
    # `npm test` may call another script (e.g. "npm run test:unit"): fall back to what is installed.
    if "vitest" in deps:
        return "vitest"
    if "jest" in deps:
        return "jest"
    return None


def _detect_main(root: Path, pkg: dict[str, Any], scripts: dict[str, str]) -> str | None:
    for cand in (
        "src/app.ts",
        "src/app.js",
        "app.js",
        "app.ts",
        "src/index.ts",
        "src/server.ts",
        "server.js",
    ):
        if (root / cand).is_file():
            return cand
    main = pkg.get("main")
    if isinstance(main, str) and (root / main).is_file():
        return main
    start = scripts.get("start", "")
    for tok in start.split():
        if tok.endswith((".js", ".ts", ".mjs", ".cjs")) and (root / tok).is_file():
            return tok
    return None


def detect_project(path: Path) -> Project:
    root = Path(path).expanduser()
    if not root.exists():
        raise ProjectError(f"{root}: no such directory")
    if not root.is_dir():
        raise ProjectError(f"{root}: not a directory (pass the project folder that holds package.json)")
    root = root.resolve()
    pkg = _read_package_json(root)
    pj = root / "package.json"
    scripts = _dict_of_str(pkg.get("scripts"), "scripts", pj)
    deps = _dict_of_str(pkg.get("dependencies"), "dependencies", pj)
    dev = _dict_of_str(pkg.get("devDependencies"), "devDependencies", pj)
    notes: list[str] = []

    lockfile = next((name for name in LOCKFILES if (root / name).is_file()), None)
    pm = LOCKFILES[lockfile] if lockfile else "npm"
    declared = pkg.get("packageManager")
    if isinstance(declared, str) and declared.split("@")[0] in ("npm", "pnpm", "yarn"):
        pm = declared.split("@")[0]
    if pm != "npm" and shutil.which(pm) is None:
        notes.append(f"{pm} is not installed; using npm")
        pm = "npm"

    bimpl, reason = _detect_bimpl(root, pkg)
    return Project(
        root=root,
        name=str(pkg.get("name") or root.name),
        package_manager=pm,
        lockfile=lockfile,
        scripts=scripts,
        dependencies=deps,
        dev_dependencies=dev,
        typescript=(root / "tsconfig.json").is_file(),
        test_runner=_detect_runner(scripts, {**deps, **dev}),
        bimpl_generated=bimpl,
        bimpl_reason=reason,
        main=_detect_main(root, pkg, scripts),
        notes=notes,
    )
