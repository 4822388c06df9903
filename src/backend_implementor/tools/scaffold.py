"""`scaffold`: the agent's way to the same generator as `bimpl new`.

The agent writes a backend spec (YAML, DESIGN §1) into the workspace and scaffolds a complete Express
project from it, into an empty folder or beside existing files. Called again on a project it made, it
updates it as `bimpl update` does: edited files merged, schema changes as the next migration. Spec errors
come back with file, line and key path so the model can fix the spec and call again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from backend_implementor.tools.base import Tool, ToolError
from backend_implementor.tools.workspace import atomic_write, resolve_in_workspace

if TYPE_CHECKING:
    from backend_implementor.spec.model import Spec


class Scaffold(Tool):
    name = "scaffold"
    description = (
        "Generate a complete Express 5 + TypeScript backend (auth, one router and service per resource, "
        "GraphQL at /graphql with `graphql: true`, drizzle schema and SQL migrations, zod validation, OpenAPI, "
        "vitest tests, Dockerfile) from a backend "
        "spec YAML file in the workspace (format: `bimpl spec schema`). On a folder scaffolded before it "
        "updates the project to the changed spec like `bimpl update`: untouched files replaced, edited ones "
        "merged (conflicts marked <<<<<<<), schema changes written as the next migration (changes that can "
        "lose data need allow_destructive). On other folders, files that already exist are not touched "
        "unless overwrite is true. Afterwards run `npm ci --ignore-scripts && npm test` there."
    )
    parameters = {
        "type": "object",
        "properties": {
            "spec": {"type": "string", "description": "Path of the spec YAML file, e.g. bimpl.yaml"},
            "out_dir": {
                "type": "string",
                "description": "Folder to generate into (default: the workspace root)",
            },
            "overwrite": {
                "type": "boolean",
                "description": "New project only: replace files that already exist (default false)",
            },
            "allow_destructive": {
                "type": "boolean",
                "description": "Update only: allow schema changes that drop columns or tables or can lose data",
            },
        },
        "required": ["spec"],
    }

    def run(
        self, spec: str, out_dir: str = ".", overwrite: bool = False, allow_destructive: bool = False
    ) -> str:
        from backend_implementor.generate import GenerateError, new_project_files
        from backend_implementor.generate.project import is_project
        from backend_implementor.spec import SpecError, load_spec

        spec_path = resolve_in_workspace(self.ctx, spec, must_exist=True)
        try:
            model = load_spec(spec_path)
        except SpecError as exc:
            raise ToolError(f"the spec has errors; fix them and call scaffold again:\n{exc}") from None
        root = self._target(out_dir)
        if is_project(root):
            return self._update(root, out_dir, model, spec_path, allow_destructive)
        try:
            files = new_project_files(model, spec_path.read_bytes())
        except GenerateError as exc:
            raise ToolError(f"cannot generate from {spec}: {exc}") from None

        targets = {rel: resolve_in_workspace(self.ctx, _join(out_dir, rel)) for rel in files}
        existing = sorted(
            rel for rel, path in targets.items() if path.exists() and path.read_bytes() != files[rel]
        )
        if existing and not overwrite:
            shown = ", ".join(existing[:10]) + (
                f" and {len(existing) - 10} more" if len(existing) > 10 else ""
            )
            raise ToolError(
                f"{len(existing)} file(s) would be replaced: {shown}. Pass overwrite=true to replace them, "
                "or choose another out_dir."
            )
        for rel, path in targets.items():
            atomic_write(self.ctx, path, files[rel].decode("utf-8"))
        where = (
            "the workspace root" if root == self.ctx.workspace else str(root.relative_to(self.ctx.workspace))
        )
        folders = sorted({rel.split("/", 1)[0] + ("/" if "/" in rel else "") for rel in files})
        resources = ", ".join(f"/{name}" for name in model.resources)
        return (
            f"Generated {len(files)} files for {model.name!r} in {where} "
            f"({'replaced ' + str(len(existing)) + ' existing, ' if existing else ''}{resources}).\n"
            f"Top level: {', '.join(folders)}\n"
            f"Next: {'' if root == self.ctx.workspace else f'cd {where} && '}"
            "npm ci --ignore-scripts && npm run build && npm test"
        )

    def _update(self, root: Path, out_dir: str, model: Spec, spec_path: Path, allow_destructive: bool) -> str:
        from backend_implementor.generate import GenerateError
        from backend_implementor.generate.project import SPEC_FILE, UpdateRefused, plan_update

        text = spec_path.read_bytes()
        try:
            plan = plan_update(root, model, text, spec_written=spec_path != root / SPEC_FILE,
                               allow_destructive=allow_destructive)  # fmt: skip
        except UpdateRefused as exc:
            raise ToolError(str(exc).replace("--allow-destructive", "allow_destructive=true")) from None
        except GenerateError as exc:
            raise ToolError(f"cannot update {out_dir}: {exc}") from None
        for rel, data in plan.writes().items():
            path = resolve_in_workspace(self.ctx, _join(out_dir, rel))
            if data is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(self.ctx, path, data.decode("utf-8"))
        lines = [
            f"Updated {model.name!r} in {out_dir or '.'} from {spec_path.relative_to(self.ctx.workspace)}."
        ]
        m = plan.migration
        if m:
            lines.append(
                f"New migration drizzle/{m.tag}.sql: " + "; ".join(c.summary for c in m.changes if c.slug)
            )
        for kind in ("replaced", "merged", "conflicted", "new", "removed", "left alone"):
            paths = [a.path for a in plan.by_kind(kind)]
            if paths:
                lines.append(f"{kind}: {', '.join(paths)}")
        if plan.conflicts:
            lines.append("Resolve the <<<<<<< ||||||| ======= >>>>>>> blocks (yours, last generated, new) in the "
                         "conflicted files, then run the tests.")  # fmt: skip
        lines.append("Next: npm ci --ignore-scripts && npm test")
        return "\n".join(lines)

    def _target(self, out_dir: str) -> Path:
        if out_dir in ("", "."):
            return self.ctx.workspace
        target = resolve_in_workspace(self.ctx, out_dir)
        if target.exists() and not target.is_dir():
            raise ToolError(f"out_dir {out_dir!r} exists and is not a folder")
        return target


def _join(out_dir: str, rel: str) -> str:
    return rel if out_dir in ("", ".") else f"{out_dir.rstrip('/')}/{rel}"
