"""Typed models of the backend spec (DESIGN §1) — the contract between the agent, the generator and verify.

Everything the generator needs is resolved here, so it never has to re-derive a default:
- durations are seconds (`access_ttl: 15m` -> 900);
- every `Access` action holds a concrete rule (defaults below, resolved against `auth`/`owned`);
- every `ref` has a concrete `on_delete` (default `restrict`), every `decimal` a precision and scale.
Dicts keep YAML order (resources, fields), so generated output is deterministic.

Access defaults for actions the spec leaves out (secure by default, documented in the JSON Schema):
- no `auth` block: every action `public` (there are no users to check);
- with `auth`: `list`/`read` public, `create`/`update`/`delete` authenticated;
- with `auth` on an `owned` resource: `update`/`delete` are `owner` instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic import Field as F

FieldType = Literal[
    "string",
    "text",
    "integer",
    "number",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "uuid",
    "email",
    "url",
    "enum",
    "json",
    "ref",
    "array",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]

# Scalars an array may hold; ref/json/array/text are excluded (no FK arrays, no nested structures).
ItemType = Literal[
    "string", "integer", "number", "boolean", "date", "datetime", "uuid", "email", "url", "enum"
]
ITEM_TYPES: tuple[str, ...] = ItemType.__args__  # type: ignore[attr-defined]

OnDelete = Literal["restrict", "cascade", "set_null"]
SessionKind = Literal["bearer", "cookie"]
AccessLevel = Literal["public", "authenticated", "owner"]
ACTIONS: tuple[str, ...] = ("list", "read", "create", "update", "delete")

IDENT_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
KEBAB_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, max_length=63)]
RoleName = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, max_length=63)]

_DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (604800, 86400, 3600, 60, 1)
DURATION_PATTERN = r"^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"


def parse_duration(value: Any) -> Any:
    """'15m' -> 900, '1h30m' -> 5400, '7d' -> 604800; an int is already seconds. Other values pass through
    unchanged so pydantic reports them as type errors rather than this function raising."""
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m and any(m.groups()):
            return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS, strict=True) if g)
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 12h, 7d, 2w or 1h30m)")
    return value


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "integer", "minimum": 1},
            ],
            "description": "A duration: 30s, 15m, 12h, 7d, 2w, 1h30m, or an integer number of seconds.",
        }
    ),
]

AccessRule = Annotated[
    AccessLevel | Annotated[list[RoleName], F(min_length=1)],
    F(
        description="`public`, `authenticated`, `owner` (owned resources; admin_role also passes) or a list of roles."
    ),
]


class _Model(BaseModel):
    # Unknown keys are errors everywhere (typos must never be silently ignored).
    model_config = ConfigDict(extra="forbid", frozen=False)


class OidcProvider(_Model):
    issuer: Annotated[
        str, StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=2000)
    ] = F(
        description="The provider's issuer URL (its discovery document is <issuer>/.well-known/openid-configuration); "
        "OIDC_<NAME>_ISSUER overrides it. https, except http://localhost or 127.0.0.1 outside production."
    )
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]] = F(
        default_factory=lambda: ["openid", "email"],
        description="Scopes to ask for; must include openid and email (accounts are matched by verified email).",
    )


class Auth(_Model):
    roles: list[RoleName] = F(
        default_factory=lambda: ["user"],
        min_length=1,
        description="Roles; the first is given at registration (registration can never choose a role).",
    )
    admin_role: RoleName | None = F(default=None, description="Optional role that bypasses ownership.")
    access_ttl: Duration = F(default=900, description="Access token lifetime (default 15m).")
    refresh_ttl: Duration = F(default=604800, description="Refresh token lifetime (default 7d).")
    sessions: SessionKind = F(
        default="bearer",
        description="How clients stay logged in: `bearer` (access + rotating refresh tokens, for any client) "
        "or `cookie` (an opaque session id in an HttpOnly cookie, for browsers; writes are Origin-checked).",
    )
    session_ttl: Duration = F(
        default=2592000,
        description="Absolute session lifetime, however active (default 30d); a new login starts a new one.",
    )
    oidc: dict[Identifier, OidcProvider] = F(
        default_factory=dict,
        description="OpenID Connect providers by name: GET /auth/oidc/<name>/login starts a login there. Client "
        "id and secret come from OIDC_<NAME>_CLIENT_ID and OIDC_<NAME>_CLIENT_SECRET.",
    )
    session_idle: Duration = F(
        default=43200,
        description="cookie sessions: ended after this long without a request (default 12h).",
    )

    @property
    def default_role(self) -> str:
        return self.roles[0]


class Field(_Model):
    type: FieldType
    description: str | None = None
    required: bool = F(default=False, description="Must be given on create; NOT NULL.")
    unique: bool = False
    index: bool = F(default=False, description="Add a database index (refs are always indexed).")
    default: Any = F(default=None, description="Default value; must match the type (and enum values).")
    min: int | float | None = F(default=None, description="integer/number/decimal: smallest value.")
    max: int | float | None = F(default=None, description="integer/number/decimal: largest value.")
    min_length: int | None = F(default=None, ge=0, description="string-like: characters; array: items.")
    max_length: int | None = F(default=None, ge=0, description="string-like: characters; array: items.")
    pattern: str | None = F(
        default=None, description="string/text: a JavaScript-compatible regular expression."
    )
    values: list[str] | None = F(
        default=None, min_length=1, description="enum (or array of enum): allowed values."
    )
    private: bool = F(default=False, description="Never returned in responses.")
    readonly: bool = F(default=False, description="Server-set: never accepted in a request body.")
    to: Identifier | None = F(default=None, description="ref: the referenced resource.")
    on_delete: OnDelete = F(
        default="restrict", description="ref: what deleting the referenced row does (default restrict)."
    )
    items: ItemType | None = F(default=None, description="array: the scalar type of the items.")
    renamed_from: Identifier | None = F(
        default=None,
        description="The field's previous name: `bimpl update` renames the column, keeping its values.",
    )
    precision: int = F(default=12, ge=1, le=1000, description="decimal: total digits (default 12).")
    scale: int = F(default=2, ge=0, le=1000, description="decimal: digits after the point (default 2).")

    @property
    def is_numeric(self) -> bool:
        return self.type in ("integer", "number", "decimal")

    @property
    def is_stringlike(self) -> bool:
        return self.type in ("string", "text", "email", "url")


class Access(_Model):
    list: AccessRule = "public"
    read: AccessRule = "public"
    create: AccessRule = "authenticated"
    update: AccessRule = "authenticated"
    delete: AccessRule = "authenticated"

    def rule(self, action: str) -> AccessLevel | list[str]:
        return getattr(self, action)


class Resource(_Model):
    description: str | None = None
    renamed_from: Identifier | None = F(
        default=None,
        description="The resource's previous name: `bimpl update` renames the table, keeping its rows.",
    )
    owned: bool = F(
        default=False, description="owner_id is set from the token on create, never from the body."
    )
    fields: dict[Identifier, Field] = F(min_length=1)
    filters: list[str] = F(default_factory=list, description="Fields allowed as ?field=value on list.")
    sort: list[str] = F(
        default_factory=list,
        description="Fields allowed in ?sort=field / -field (also created_at, updated_at).",
    )
    access: Access = F(
        default_factory=Access,
        description="Per-action access. Omitted actions: all public without `auth`; with `auth` list/read "
        "public and create/update/delete authenticated, except update/delete `owner` on owned resources.",
    )


class GraphQL(_Model):
    """`graphql: true` takes these defaults; the limits refuse a query before it runs (400)."""

    max_depth: int = F(default=8, ge=2, le=32, description="Deepest selection nesting a query may have.")
    max_aliases: int = F(default=15, ge=1, le=100, description="Aliases one operation may use.")
    max_directives: int = F(default=10, ge=1, le=100, description="Directives one operation may use.")
    max_cost: int = F(
        default=5000,
        ge=100,
        le=100000,
        description="Highest cost an operation may have (graphql-armor: 1 per field, lists multiply by 10).",
    )


class Spec(_Model):
    name: Annotated[str, StringConstraints(pattern=KEBAB_PATTERN, max_length=214)] = F(
        description="kebab-case project name (the npm package name)."
    )
    description: str = ""
    auth: Auth | None = F(default=None, description="Omit for no users: then every action must be public.")
    resources: dict[Identifier, Resource] = F(
        default_factory=dict, description="Plural names: URL path /<name>."
    )
    graphql: bool | GraphQL = F(
        default=False,
        description="Also serve every resource at POST/GET /graphql, with the REST rules; `true` or limits.",
    )

    @property
    def graphql_options(self) -> GraphQL | None:
        if self.graphql is True:
            return GraphQL()
        return self.graphql or None

    @model_validator(mode="after")
    def _resolve_access_defaults(self) -> Spec:
        for res in self.resources.values():
            given = res.access.model_fields_set
            for action in ACTIONS:
                if action in given:
                    continue
                if self.auth is None:
                    rule: AccessLevel = "public"
                elif action in ("list", "read"):
                    rule = "public"
                elif res.owned and action in ("update", "delete"):
                    rule = "owner"
                else:
                    rule = "authenticated"
                # object.__setattr__ keeps model_fields_set = what the author wrote (semantic checks use it).
                object.__setattr__(res.access, action, rule)
        return self

    def field_count(self) -> int:
        return sum(len(r.fields) for r in self.resources.values())
