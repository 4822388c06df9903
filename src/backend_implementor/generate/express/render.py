"""Render an Express 5 + TypeScript project from a Spec (DESIGN §2).

Every file under templates/ is a Jinja2 template rendered with one context built from the spec;
`src/resources/resource.ts` and `test/resource.test.ts` are rendered once per resource. Migrations and
the lockfile are produced here in Python. Output is a pure function of the spec: same spec, same bytes.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources as importlib_resources
from pathlib import PurePosixPath
from typing import Any

import jinja2

from backend_implementor.generate.errors import GenerateError
from backend_implementor.generate.express import codegen
from backend_implementor.generate.express.codegen import ResourceCode, ts
from backend_implementor.generate.express.graphql_sdl import graphql_names, render_sdl
from backend_implementor.generate.express.migrations import Table, constraint_name, initial_migration, tables
from backend_implementor.generate.express.samples import sample_plan
from backend_implementor.generate.express.schema_diff import Renames
from backend_implementor.spec.model import Spec

PER_RESOURCE = {
    "src/resources/resource.ts": "src/resources/{name}.ts",
    "src/services/service.ts": "src/services/{name}.ts",
    "test/resource.test.ts": "test/{name}.test.ts",
}


@cache
def _templates() -> dict[str, str]:
    root = importlib_resources.files("backend_implementor.generate.express") / "templates"
    out: dict[str, str] = {}

    def walk(node: Any, prefix: PurePosixPath) -> None:
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            path = prefix / child.name
            if child.is_dir():
                walk(child, path)
            else:
                out[str(path)] = child.read_text(encoding="utf-8")

    walk(root, PurePosixPath())
    return dict(sorted(out.items()))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        extensions=["jinja2.ext.do"],
    )
    env.filters["ts"] = ts
    env.filters["pascal"] = codegen.pascal
    env.filters["json"] = lambda v: json.dumps(v, indent=2)
    env.globals["index_name"] = lambda table, cols: constraint_name(table, tuple(cols), "_idx")
    return env


# Packages only some projects import, by the context key that needs them: (group, package).
OPTIONAL_PACKAGES: dict[str, list[tuple[str, str]]] = {
    "auth": [("dependencies", "@node-rs/argon2"), ("dependencies", "express-rate-limit")],
    "bearer_sessions": [("dependencies", "jose")],
    "uses_cookies": [("dependencies", "cookie")],
    "oidc": [
        ("dependencies", "openid-client"),
        ("devDependencies", "oidc-provider"),
        ("devDependencies", "@types/oidc-provider"),
    ],
    "graphql": [
        ("dependencies", "graphql"),
        ("dependencies", "graphql-http"),
        ("dependencies", "dataloader"),
        ("dependencies", "@escape.tech/graphql-armor-cost-limit"),
        ("dependencies", "@escape.tech/graphql-armor-max-aliases"),
        ("dependencies", "@escape.tech/graphql-armor-max-depth"),
        ("dependencies", "@escape.tech/graphql-armor-max-directives"),
    ],
}


def _lockfile(name: str, ctx: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    raw = (
        importlib_resources.files("backend_implementor.generate.express") / "package-lock.template.json"
    ).read_text(encoding="utf-8")
    lock = json.loads(raw)
    lock["name"] = name
    root = lock["packages"][""]
    root["name"] = name
    unused = [pkg for key, pkgs in OPTIONAL_PACKAGES.items() if not ctx[key] for pkg in pkgs]
    for group, dep in unused:
        del root[group][dep]
    if unused:
        lock["packages"] = prune_lock(lock["packages"])
    return json.dumps(lock, indent=2, ensure_ascii=False) + "\n", root


def resolve(packages: dict[str, Any], parent: str, dep: str) -> str | None:
    """Where npm finds `dep` required from `parent` (a lock key): its own node_modules, then each ancestor's."""
    base = parent
    while True:
        candidate = f"{base}/node_modules/{dep}" if base else f"node_modules/{dep}"
        if candidate in packages:
            return candidate
        if not base:
            return None
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def prune_lock(packages: dict[str, Any]) -> dict[str, Any]:
    """The lock's packages minus every one no longer reachable from the root (so `npm ci` installs no extras)."""
    keep = {""}
    todo = [""]
    while todo:
        key = todo.pop()
        entry = packages[key]
        for group in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
            if key and group == "devDependencies":
                continue  # only the root's dev dependencies are installed
            for dep in entry.get(group, {}):
                found = resolve(packages, key, dep)
                if found is None:
                    if group == "peerDependencies" or dep in entry.get("peerDependenciesMeta", {}):
                        continue  # an optional peer that nothing installs
                    raise GenerateError(f"package-lock: {key or 'root'} needs {dep}, which is not locked")
                if found not in keep:
                    keep.add(found)
                    todo.append(found)
    return {k: v for k, v in packages.items() if k in keep}


def _package_json(name: str, description: str, root: dict[str, Any]) -> str:
    # Dependencies come from the lockfile's root entry, so package.json and the lock can never disagree.
    pkg = {
        "name": name,
        "version": root.get("version", "0.1.0"),
        "description": description,
        "private": True,
        "type": "module",
        "engines": root.get("engines", {"node": ">=20.12"}),
        "scripts": {
            "build": "tsc -p tsconfig.json",
            "typecheck": "tsc -p tsconfig.test.json",
            "prestart": "npm run build",
            "start": "node dist/server.js",
            "dev": "tsx watch src/server.ts",
            "test": "vitest run",
            "db:migrate": "tsx src/db/cli.ts up",
            "db:rollback": "tsx src/db/cli.ts down",
            "db:generate": "drizzle-kit generate",
        },
        "dependencies": root["dependencies"],
        "devDependencies": root["devDependencies"],
    }
    return json.dumps(pkg, indent=2) + "\n"


# ---- context ------------------------------------------------------------------------------------


def _dotted(path: str) -> str:
    # Dotfiles are stored as dot-<name> so packaging tools never skip them.
    return "/".join("." + p[4:] if p.startswith("dot-") else p for p in path.split("/"))


def build_context(spec: Spec) -> dict[str, Any]:
    if not spec.resources:
        raise GenerateError("resources: the spec defines no resources")
    graphql = spec.graphql_options
    reserved = {"health", "livez", "docs", "openapi.json"} | ({"auth", "users"} if spec.auth else set())
    reserved |= {"graphql"} if graphql else set()
    for name in spec.resources:
        if name in reserved:
            raise GenerateError(f"resources.{name}: the path /{name} is reserved by the generated backend")
    by_name = [codegen.resource_code(spec, n, r) for n, r in spec.resources.items()]
    ordered = codegen.topo_order(by_name)
    auth = spec.auth
    admin_role = auth.admin_role if auth else None
    # name, the infix of its environment variables (OIDC_<ENV>_...), issuer and scopes, per provider.
    oidc = [
        {"name": name, "env": name.upper(), "issuer": p.issuer, "scopes": p.scopes}
        for name, p in (auth.oidc.items() if auth else ())
    ]
    pg_imports = {"pgTable", "timestamp", "uuid"}
    if auth:
        pg_imports |= {"index", "integer", "text", "varchar"}
    for r in ordered:
        pg_imports |= {f.pg_import for f in r.fields}
        if r.indexes:
            pg_imports.add("index")
        r.has_datetime = any(re.search(r"\biso\b", f.to_json) for f in r.fields if not f.private)  # type: ignore[attr-defined]
        r.private_fields = [f.name for f in r.fields if f.private]  # type: ignore[attr-defined]
        r.sort_values = [v for s in r.sort for v in (s, "-" + s)]  # type: ignore[attr-defined]
    by_name = {r.name: r for r in ordered}
    samples = sample_plan(spec)
    for r in ordered:
        # The ref fields that point at r, by the resource holding them: GraphQL's reverse sides.
        r.back_refs = [  # type: ignore[attr-defined]
            {"child": c, "field": f.name}
            for c in ordered
            for f in c.fields
            if f.ref_table == r.name and not f.private
        ]
        r.referenced = bool(r.back_refs)  # type: ignore[attr-defined]
    for r in ordered:
        _reference_guards(r, by_name)
        _service_imports(r, graphql=graphql is not None)
    names = graphql_names(spec, ordered) if graphql else {}
    for r in ordered:
        r.gql = names.get(r.name)  # type: ignore[attr-defined]
        # Every field a client can read, references by their id: what the generated GraphQL tests select.
        picked = ["id", *(["owner_id"] if r.owned else [])]
        picked += [f"{f.name} {{ id }}" if f.ref_table else f.name for f in r.fields if not f.private]
        r.gql_selection = " ".join([*picked, "created_at", "updated_at"])  # type: ignore[attr-defined]
        for g in r.guards:  # type: ignore[attr-defined]
            owner = samples[g["target"].name]["actors"]["create"]
            g["intruders"] = _intruders(spec, r.access["create"], g["rule"], owner)
    uses_decimal = any(f.type == "decimal" for r in ordered for f in r.fields)
    # Children that block deleting a parent (on_delete restrict), for the generated 409 tests.
    restrict_children = {
        r.name: [
            (c.name, f.name)
            for c in ordered
            for f in c.fields
            if f.ref_table == r.name and f.on_delete == "restrict" and f.writable  # a test must set it
        ]
        for r in ordered
    }
    return {
        "name": spec.name,
        "description": spec.description or spec.name,
        "auth": auth is not None,
        "roles": list(auth.roles) if auth else [],
        "default_role": auth.default_role if auth else None,
        "admin_role": admin_role,
        "access_ttl": auth.access_ttl if auth else None,
        "refresh_ttl": auth.refresh_ttl if auth else None,
        "session_ttl": auth.session_ttl if auth else None,
        "session_idle": auth.session_idle if auth else None,
        "cookie_sessions": auth is not None and auth.sessions == "cookie",
        "bearer_sessions": auth is not None and auth.sessions == "bearer",
        "oidc": oidc,
        "uses_cookies": auth is not None and (auth.sessions == "cookie" or bool(oidc)),
        "graphql": graphql.model_dump() if graphql else None,
        "graphql_batch": _batch_probe(ordered) if graphql else None,
        "resources": ordered,
        "resources_by_name": sorted(ordered, key=lambda r: r.name),
        "pg_imports": sorted(pg_imports),
        "uses_decimal": uses_decimal,
        "uses_json": _calls(ordered, "JsonValue"),
        "uses_text": auth is not None or _calls(ordered, "text()") or _calls(ordered, "JsonValue"),
        "uses_email": auth is not None or _calls(ordered, "email()"),
        "uses_date": _calls(ordered, "isoDate()"),
        "uses_query_number": _calls(ordered, "queryNumber("),
        "uses_datetime": _calls(ordered, "isoDateTime()"),
        "sql_defaults": any(f.sql_literal_default for r in ordered for f in r.fields),
        "restrict_children": restrict_children,
        "samples": samples,
        "samples_ts": json.dumps(samples, indent=2, ensure_ascii=False),
    }


def _calls(resources: list[ResourceCode], helper: str) -> bool:
    """Whether a request schema (body or filter) uses this helper of schemas.ts."""
    return any(helper in f.zod_create + (f.zod_filter or "") for r in resources for f in r.fields)


def _reference_guards(r: ResourceCode, by_name: dict[str, ResourceCode]) -> None:
    """Ref fields whose target is not readable by everyone (`owner` or a role list): create and update check
    that the user may read the named row, and answer as if it did not exist otherwise."""
    guards = []
    for f in r.fields:
        if not f.ref_table or not f.writable:
            continue
        target = by_name[f.ref_table]
        rule = target.access["read"]
        if rule in ("public", "authenticated"):
            continue
        guards.append(
            {"field": f.name, "target": target, "rule": rule, "label": codegen.singular(target.name)}
        )
    r.guards = guards  # type: ignore[attr-defined]
    r.guard_user_optional = any(r.access[a] == "public" for a in ("create", "update"))  # type: ignore[attr-defined]
    r.imports_tables = sorted({r.var, *(g["target"].var for g in guards)})  # type: ignore[attr-defined]


def _batch_probe(resources: list[ResourceCode]) -> dict[str, Any] | None:
    """A reference and its reverse side for the generated N+1 and depth tests: child rows, each child's parent,
    and each parent's children (the first reference that has both sides), or None when no resource has one."""
    for parent in resources:
        for back in parent.gql.back_refs:  # type: ignore[attr-defined]
            return {"child": back.child, "field": back.field, "parent": parent, "back": back.name}
    return None


def _service_imports(r: ResourceCode, graphql: bool) -> None:
    """What a resource's service needs: which actions use the caller (`me`), and its imports."""
    owner_guard = any(g["rule"] == "owner" for g in r.guards)  # type: ignore[attr-defined]
    guard_needs_user = bool(r.guards) and not r.guard_user_optional  # type: ignore[attr-defined]
    r.user_needed = {  # type: ignore[attr-defined]
        "list": r.access["list"] == "owner",
        "read": r.access["read"] == "owner",
        "create": r.owned or guard_needs_user,
        "update": r.access["update"] == "owner" or guard_needs_user,
        "delete": r.access["delete"] == "owner",
    }
    r.ref_fields = [f.name for f in r.fields if f.ref_table and not f.private] if graphql else []  # type: ignore[attr-defined]
    r.uses_is_admin = r.any_owner_action or owner_guard  # type: ignore[attr-defined]
    drizzle = ["and"] if (r.filters or r.any_owner_action or owner_guard) else []
    in_array = ["inArray"] if graphql and r.referenced else []  # type: ignore[attr-defined]
    r.service_drizzle = [*drizzle, "eq", *in_array, "sql"]  # type: ignore[attr-defined]
    common = ["type Bind"] if (r.filters or r.any_owner_action) else []
    common += ["childPages"] if r.ref_fields else []  # type: ignore[attr-defined]
    common += ["inline"] if r.any_owner_action else []
    common += ["Inserts"] + (["iso"] if r.has_datetime else []) + ["List"]  # type: ignore[attr-defined]
    common += ["type Page"] if r.ref_fields else []  # type: ignore[attr-defined]
    r.service_common = [*common, "sorting"]  # type: ignore[attr-defined]


def _intruders(spec: Spec, create_rule: Any, read_rule: Any, owner: str | None) -> list[str | None]:
    """Test users who may create rows here but may not read the row `owner` created in the target (under
    `read_rule`): those a guarded reference must refuse. None is anonymous, for a public create. May be empty."""
    assert spec.auth is not None
    if create_rule == "public":
        return [None]
    roles = create_rule if isinstance(create_rule, list) else spec.auth.roles
    if read_rule == "owner":
        keys = [k for role in roles if role != spec.auth.admin_role for k in (role, f"{role}_2")]
        return [k for k in keys if k != owner]
    return [role for role in roles if role not in read_rule]


def render_files(spec: Spec) -> dict[str, bytes]:
    """Every file of a new project, by relative POSIX path, in sorted order: the app and its first migration."""
    files, model = render_app(spec)
    files.update({p: t.encode("utf-8") for p, t in initial_migration(model).items()})
    return dict(sorted(files.items()))


def spec_renames(spec: Spec) -> Renames:
    """The spec's `renamed_from` hints, for the next migration."""
    renames = Renames()
    for name, res in spec.resources.items():
        if res.renamed_from:
            renames.tables[name] = res.renamed_from
        for fname, f in res.fields.items():
            if f.renamed_from:
                renames.columns[(name, fname)] = f.renamed_from
    return renames


def render_app(spec: Spec) -> tuple[dict[str, bytes], list[Table]]:
    """The files bimpl keeps in step with the spec (everything but drizzle/, the migration history, which only
    ever grows), and the table model the migrations must build."""
    ctx = build_context(spec)
    env = _env()
    files: dict[str, str] = {}
    for path, source in _templates().items():
        template = env.from_string(source)
        if path in PER_RESOURCE:
            for r in ctx["resources"]:
                out = PER_RESOURCE[path].format(name=r.name)
                files[out] = template.render(ctx, r=r)
        else:
            text = template.render(ctx)
            if text.strip():  # a template that renders empty is a file this spec does not need
                files[_dotted(path)] = text
    if ctx["graphql"]:
        files["schema.graphql"] = render_sdl(spec, ctx["resources"])
    lock, root = _lockfile(spec.name, ctx)
    files["package-lock.json"] = lock
    files["package.json"] = _package_json(spec.name, ctx["description"], root)
    model = tables(ctx["resources"], auth=ctx["auth"], oidc=bool(ctx["oidc"]))
    return {p: files[p].encode("utf-8") for p in sorted(files)}, model
