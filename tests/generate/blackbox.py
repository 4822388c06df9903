"""Black-box HTTP checks of a running generated backend, driven only by its spec (no knowledge of its code).

Used against PGlite and against real PostgreSQL. Users are created through the API: registration, then the
seeded admin promotes them to each role (a spec with `auth` needs an admin_role here). A spec without `auth`
gets the same resource checks with no tokens, plus checks that no auth surface exists.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from openapi_spec_validator import validate

from backend_implementor.generate.express.samples import invalid_value, sample_body
from backend_implementor.spec.model import Spec

PASSWORD = "black-box-password"
INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE users; --",
    '" OR ""="',
    "' UNION SELECT password_hash FROM users --",
]


class Client:
    """Users by key, each logged in with a bearer token or, for `sessions: cookie`, a session cookie."""

    def __init__(self, base: str, admin: tuple[str, str] | None, cookie: bool = False):
        self.base = base
        self.cookie = cookie
        self.http = httpx.Client(base_url=base, timeout=20)
        self.tokens: dict[str, str] = {}  # the access token, or the Cookie header of the session
        self.ids: dict[str, str] = {}
        if admin is None:
            return
        self.tokens["admin"] = self.login(*admin)

    def login(self, email: str, password: str) -> str:
        res = self.http.post("/auth/login", json={"email": email, "password": password})
        assert res.status_code == 200, res.text
        if not self.cookie:
            return res.json()["access_token"]
        self.http.cookies.clear()  # each user's cookie is sent explicitly, never from the client's jar
        return session_cookie(res)

    def user(self, key: str, role: str) -> str:
        """Registers `key@example.com`, promotes it to `role` via the admin API, logs in; returns the token."""
        email = f"{key}@example.com"
        reg = self.http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert reg.status_code == 201, reg.text
        self.ids[key] = reg.json()["id"]
        patched = self.http.patch(f"/users/{self.ids[key]}", json={"role": role}, headers=self.auth("admin"))
        assert patched.status_code == 200, patched.text
        self.tokens[key] = self.login(email, PASSWORD)
        return self.tokens[key]

    def auth(self, key: str | None) -> dict[str, str]:
        if not key:
            return {}
        if self.cookie:  # as the app's own page would send it: the cookie, and this site as the Origin
            return {"Cookie": self.tokens[key], "Origin": self.base}
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def req(self, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        res = self.http.request(method, path, headers={**self.auth(key), **kw.pop("headers", {})}, **kw)
        assert res.status_code < 500, f"{method} {path} -> {res.status_code}: {res.text[:500]}"
        return res


def session_cookie(res: httpx.Response) -> str:
    """`name=value` of the session cookie a login answer set."""
    found = [h for h in res.headers.get_list("set-cookie") if h.startswith(("__Host-session=", "session="))]
    assert found, res.headers
    return found[0].split(";")[0]


def actor(spec: Spec, rule: Any, owner: str) -> str | None:
    """A user key allowed by an access rule (`owner` rules use the row's owner)."""
    if rule == "public":
        return None
    if rule in ("authenticated", "owner"):
        return owner
    return rule[0]


def run_checks(base: str, spec: Spec, admin: tuple[str, str]) -> dict[str, Any]:
    """Runs every check (assertions raise); returns facts for the caller (e.g. registered emails)."""
    cookie = spec.auth is not None and spec.auth.sessions == "cookie"
    c = Client(base, admin if spec.auth else None, cookie=cookie)
    default = ""
    if spec.auth:
        assert spec.auth.admin_role, "the black-box checks promote users through the admin role"
        for role in spec.auth.roles:
            c.user(role, role)
            c.user(f"{role}_2", role)
        default = spec.auth.roles[0]

    # Headers and documents.
    health = c.req("GET", "/health")
    assert health.status_code == 200
    assert "x-powered-by" not in health.headers
    for header in (
        "content-security-policy",
        "x-content-type-options",
        "strict-transport-security",
        "x-frame-options",
    ):
        assert header in health.headers, header
    doc = c.req("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    assert c.req("GET", "/docs").status_code == 200

    if spec.auth is None:
        no_auth_surface(c, doc)
    elif cookie:
        cookie_checks(c, spec, default)
    else:
        token_checks(c, spec, default)

    created: dict[str, list[dict[str, Any]]] = {}
    counters: dict[str, int] = {}

    def create(name: str, key: str | None = None, **overrides: Any) -> dict[str, Any]:
        res_spec = spec.resources[name]
        i = counters[name] = counters.get(name, 0) + 1
        body = sample_body(spec, name, 100 + i)
        for fname, f in res_spec.fields.items():
            if f.type == "ref" and not f.readonly:
                body[fname] = create(f.to)["id"] if f.to != name else None
        body.update(overrides)
        who = key if key is not None else actor(spec, res_spec.access.create, default)
        res = c.req("POST", f"/{name}", who, json=body)
        assert res.status_code == 201, f"create {name}: {res.status_code} {res.text}"
        assert res.headers["location"] == f"/{name}/{res.json()['id']}"
        created.setdefault(name, []).append(res.json())
        return res.json()

    for name, r in spec.resources.items():
        path = f"/{name}"
        rows = [create(name), create(name), create(name)]
        row = rows[0]
        read_as = actor(spec, r.access.read, default)
        list_as = actor(spec, r.access.list, default)

        # 400: unknown keys (mass assignment), wrong types, unknown query parameters, bad sort.
        body = sample_body(spec, name, 999)
        for fname, f in r.fields.items():
            if f.type == "ref":
                body[fname] = row[fname] if fname in row else create(f.to)["id"]
        creator = actor(spec, r.access.create, default)
        for key in ("role", "owner_id", "id"):
            res = c.req(
                "POST",
                path,
                creator,
                json={**body, key: "admin" if key == "role" else row["id"]},
            )
            assert res.status_code == 400, (name, key, res.text)
            assert res.headers["content-type"].startswith("application/problem+json")
            assert any(e["path"] == f"body.{key}" for e in res.json()["errors"])
        bad = next(((n, invalid_value(f)) for n, f in r.fields.items() if invalid_value(f) is not None), None)
        if bad:
            res = c.req("POST", path, creator, json={**body, bad[0]: bad[1]})
            assert res.status_code == 400, (name, bad, res.text)
        # PostgreSQL cannot store U+0000 in text or jsonb: a NUL anywhere in a body is a 400, never a 500.
        for fname, f in r.fields.items():
            if f.type in ("string", "text", "json") and not f.readonly:
                res = c.req("POST", path, creator, json={**body, fname: "a\u0000b"})
                assert res.status_code == 400, (name, fname, res.status_code, res.text)
                assert res.json()["errors"] == [
                    {"path": f"body.{fname}", "message": "NUL characters are not accepted."}
                ]
            if f.type == "json" and not f.readonly:  # and in a key, at any depth
                res = c.req("POST", path, creator, json={**body, fname: {"a": [{"b\u0000": 1}]}})
                assert res.status_code == 400, (name, fname, res.status_code, res.text)
        # Early instants PostgreSQL stores answer back as ISO 8601 (Date cannot parse "0017-01-01 00:01:00+00").
        for fname, f in r.fields.items():
            if f.type == "datetime" and not f.readonly:
                for value, answer in (
                    ("0017-01-01T00:01:00Z", "0017-01-01T00:01:00.000Z"),
                    ("0001-01-02T00:00:00.5+01:00", "0001-01-01T23:00:00.500Z"),
                ):
                    made = create(name, **{fname: value})
                    assert made[fname] == answer, (name, fname, made)
                    got = c.req("GET", f"{path}/{made['id']}", read_as)
                    assert got.json()[fname] == answer, (name, fname, got.text)
        assert c.req("GET", f"{path}?nope=1", list_as).status_code == 400
        assert c.req("GET", f"{path}?sort=password_hash", list_as).status_code == 400
        assert c.req("GET", f"{path}?limit=1000", list_as).status_code == 400

        # Pagination.
        page = c.req("GET", path, list_as, params={"limit": 2, "offset": 1}).json()
        assert len(page["items"]) == 2 and page["limit"] == 2 and page["offset"] == 1 and page["total"] >= 3
        assert page["count"] == "exact"  # a small table is counted exactly by the default estimate

        # Filters: matching rows only; injection strings are data (200 with no match, or 400), never 500.
        for fname in r.filters:
            value = row[fname]
            query_value = json.dumps(value) if isinstance(value, bool) else str(value)
            got = c.req("GET", path, list_as, params={fname: query_value, "limit": 100})
            assert got.status_code == 200, got.text
            items = got.json()["items"]
            assert row["id"] in [i["id"] for i in items]
            assert all(i[fname] == value for i in items), (name, fname)
            for probe in [*INJECTIONS, "x\u0000y"]:
                res = c.req("GET", path, list_as, params={fname: probe})
                if res.status_code == 200:
                    assert res.json()["total"] == 0
                else:
                    assert res.status_code == 400

        # Sort both ways.
        for sname in r.sort:
            up = [
                i[sname]
                for i in c.req("GET", path, list_as, params={"sort": sname, "limit": 100}).json()["items"]
            ]
            down = [
                i[sname]
                for i in c.req("GET", path, list_as, params={"sort": f"-{sname}", "limit": 100}).json()[
                    "items"
                ]
            ]
            assert down == list(reversed(up)), (name, sname)
            comparable = [v for v in up if v is not None]
            if r.fields.get(sname) is None or r.fields[sname].type in (
                "integer",
                "number",
                "date",
                "datetime",
            ):
                assert comparable == sorted(comparable), (name, sname, up)

        # Ids: unknown, malformed and injected ids are 404.
        for bad_id in ["00000000-0000-4000-8000-000000000000", "abc", *INJECTIONS]:
            res = c.req("GET", f"{path}/{httpx.URL(bad_id).raw_path.decode()}", read_as)
            assert res.status_code == 404, (name, bad_id, res.status_code)

        # 401 without a token; 403 for a role outside a role list.
        for action, method, target in (
            ("list", "GET", path),
            ("read", "GET", f"{path}/{row['id']}"),
            ("create", "POST", path),
            ("update", "PATCH", f"{path}/{row['id']}"),
            ("delete", "DELETE", f"{path}/{row['id']}"),
        ):
            rule = r.access.rule(action)
            kw: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
            if rule != "public":
                assert c.req(method, target, None, **kw).status_code == 401, (name, action)
            if isinstance(rule, list) and spec.auth:
                outside = [role for role in spec.auth.roles if role not in rule]
                if outside:
                    assert c.req(method, target, outside[0], **kw).status_code == 403, (name, action)

        # Ownership: another user of the same role gets 404 on owner-only actions; the admin passes.
        if r.owned and spec.auth:
            assert row["owner_id"] == c.ids[creator]
            stranger = f"{creator}_2"
            if creator != spec.auth.admin_role:
                if r.access.read == "owner":
                    assert c.req("GET", f"{path}/{row['id']}", stranger).status_code == 404
                    assert c.req("GET", f"{path}/{row['id']}", "admin").status_code == 200
                if r.access.update == "owner":
                    res = c.req("PATCH", f"{path}/{row['id']}", stranger, json={})
                    assert res.status_code == 404, (name, res.status_code, res.text)
                if r.access.delete == "owner":
                    assert c.req("DELETE", f"{path}/{row['id']}", stranger).status_code == 404
                if r.access.list == "owner":
                    ids = [
                        i["id"] for i in c.req("GET", path, stranger, params={"limit": 100}).json()["items"]
                    ]
                    assert row["id"] not in ids

        # 409: duplicate unique value.
        for fname, f in r.fields.items():
            if f.unique and not f.readonly and row.get(fname) is not None:
                dup = {**body, fname: row[fname]}
                assert c.req("POST", path, creator, json=dup).status_code == 409, (name, fname)
                break

    # 409: deleting a row that a restrict reference still points at.
    for name, r in spec.resources.items():
        for fname, f in r.fields.items():
            if f.type == "ref" and f.on_delete == "restrict":
                parent = create(f.to)
                create(name, **{fname: parent["id"]})
                deleter = actor(spec, spec.resources[f.to].access.delete, default)
                res = c.req("DELETE", f"/{f.to}/{parent['id']}", deleter)
                assert res.status_code == 409, (name, fname, res.text)
                assert "constraint" not in res.text.lower()

    # Finally a successful delete per resource (children first would cascade or restrict; pick a fresh row).
    for name, r in spec.resources.items():
        row = create(name)
        deleter = actor(spec, r.access.delete, default)
        assert c.req("DELETE", f"/{name}/{row['id']}", deleter).status_code == 204
        assert c.req("GET", f"/{name}/{row['id']}", actor(spec, r.access.read, default)).status_code == 404

    # References to rows the sender may not read (another user's owned row) look exactly like unknown ids.
    if spec.auth:
        for name, r in spec.resources.items():
            for fname, f in r.fields.items():
                if f.type == "ref" and not f.readonly and spec.resources[f.to].access.read == "owner":
                    reference_checks(c, spec, create, name, fname, default)

    hostile_input_checks(c, spec)
    return {"emails": [f"{k}@example.com" for k in c.ids]}


JSON = {"content-type": "application/json"}
# Bodies no schema accepts and some no database stores: each must be a 4xx problem, never a 500.
HOSTILE_BODIES = {
    "10,000-deep nesting": b"[" * 10_000 + b"]" * 10_000,
    "10,000-deep object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "invalid UTF-8": b'{"x": "caf\xe9 \xff\xfe"}',
    "lone surrogate": b'{"x": "\\ud800"}',
    "NUL": b'{"x": "a\\u0000b"}',
    "not JSON": b"{'x': 1",
    "empty": b"",  # with a JSON content type: {} to the schema, so a 400 too
}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def problem(res: httpx.Response, *statuses: int) -> None:
    assert res.status_code in statuses, (
        f"{res.request.method} {res.request.url} -> {res.status_code}: {res.text[:300]}"
    )
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers


def hostile_input_checks(c: Client, spec: Spec) -> None:
    """Hostile bodies and query strings, anonymous and logged in, and methods a path does not serve."""
    who: list[str | None] = [None, "admin"] if spec.auth else [None]
    if spec.auth:
        for label, body in HOSTILE_BODIES.items():
            for path in ("/auth/login", "/auth/register"):
                problem(c.req("POST", path, content=body, headers=JSON), 400)
            if label in ("lone surrogate", "NUL"):
                res = c.req("POST", "/auth/login", content=body.replace(b'"x"', b'"email"'), headers=JSON)
                problem(res, 400)
                assert res.json()["errors"][0]["path"] == "body.email", res.text
        for path in ("/auth/login", "/auth/register"):
            problem(c.req("POST", path, content=b'{"email": "a@example.com"}'), 415)  # no content type
    for name, r in spec.resources.items():
        for key in who:
            for label, body in HOSTILE_BODIES.items():
                if label == "empty":
                    continue  # {} is a valid body wherever no field is required
                for method, path in (("POST", f"/{name}"), ("PATCH", f"/{name}/{UNKNOWN_ID}")):
                    res = c.req(method, path, key, content=body, headers=JSON)
                    # Logged in as the admin (or with no auth at all) the body itself is judged.
                    judged = key == "admin" or not spec.auth
                    problem(res, *((400, 403) if judged else (400, 401, 403)))
            fname = next((f for f, fd in r.fields.items() if fd.is_stringlike and not fd.readonly), None)
            if fname and (key == "admin" or not spec.auth):
                res = c.req(
                    "POST", f"/{name}", key, content=f'{{"{fname}": "a\\ud800"}}'.encode(), headers=JSON
                )
                if res.status_code != 403:
                    problem(res, 400)
                    assert f"body.{fname}" in [e["path"] for e in res.json()["errors"]], res.text
            # Valid ISO 8601 that PostgreSQL cannot store (or answer back as ISO 8601): a 400, not a 500.
            unstorable = {
                "date": ["0000-06-01"],
                "datetime": [
                    "0000-06-01T00:00:00Z",
                    "2020-01-01T00:00:00+16:00",
                    "9999-12-31T23:00:00-05:00",
                ],
            }
            for dname, fd in r.fields.items():
                if fd.readonly or fd.type not in unstorable or not (key == "admin" or not spec.auth):
                    continue
                for value in unstorable[fd.type]:
                    res = c.req("PATCH", f"/{name}/{UNKNOWN_ID}", key, json={dname: value})
                    if res.status_code != 403:
                        problem(res, 400)
                        assert [e["path"] for e in res.json()["errors"]] == [f"body.{dname}"], res.text
            for query in (
                "offset=",
                "limit=",
                "offset=99999999999999999999",
                "limit=0",
                "offset=-1",
                "offset=1e400",
            ):
                res = c.req("GET", f"/{name}?{query}", key)
                if res.status_code not in (401, 403):
                    problem(res, 400)
        for path, allow in ((f"/{name}", "GET, POST"), (f"/{name}/{UNKNOWN_ID}", "GET, PATCH, DELETE")):
            for method in ("PUT", "TRACE"):
                res = c.req(method, path)
                problem(res, 405)
                assert res.headers["allow"] == allow


def no_auth_surface(c: Client, doc: dict[str, Any]) -> None:
    """A spec without `auth`: no auth routes, nothing secured in the document, tokens are not looked at."""
    assert "securitySchemes" not in doc.get("components", {})
    assert not [p for p in doc["paths"] if p.startswith(("/auth", "/users"))]
    assert all("security" not in op for item in doc["paths"].values() for op in item.values())
    login = c.req("POST", "/auth/login", json={"email": "a@example.com", "password": PASSWORD})
    assert login.status_code == 404
    assert c.req("GET", "/users").status_code == 404
    assert c.http.get("/health", headers={"Authorization": "Bearer not-a-token"}).status_code == 200


def token_checks(c: Client, spec: Spec, default: str) -> None:
    """JWT tampering is 401, /auth/me answers, registration cannot pick a role."""
    assert spec.auth is not None
    # JWT tampering: alg none and an edited payload are 401.
    token = c.tokens[default]
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    b64 = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
    for forged in (
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{head}.{b64({**claims, 'role': spec.auth.admin_role})}.{sig}",
    ):
        res = c.http.get("/auth/me", headers={"Authorization": f"Bearer {forged}"})
        assert res.status_code == 401, res.text
    assert c.req("GET", "/auth/me", default).json()["role"] == default
    # Registration can never choose a role.
    res = c.req(
        "POST", "/auth/register", json={"email": "x@example.com", "password": PASSWORD, "role": "admin"}
    )
    assert res.status_code == 400


def cookie_checks(c: Client, spec: Spec, default: str) -> None:
    """The session cookie's flags, a made-up cookie is anonymous, writes from another site are refused, and
    logout and "log out everywhere" end sessions on the server."""
    assert spec.auth is not None
    res = c.http.post("/auth/login", json={"email": f"{default}@example.com", "password": PASSWORD})
    header = next(h for h in res.headers.get_list("set-cookie") if h.startswith("__Host-session="))
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert flag in header, header
    fresh = {"Cookie": session_cookie(res), "Origin": c.base}
    c.http.cookies.clear()
    assert c.req("GET", "/auth/me", default).json()["role"] == default
    assert c.http.get("/auth/me", headers={"Cookie": "__Host-session=" + "A" * 43}).status_code == 401
    foreign = {**fresh, "Origin": "https://evil.example"}
    assert c.http.post("/auth/logout", headers=foreign).status_code == 403
    sessions = c.http.get("/auth/sessions", headers=fresh).json()["items"]
    assert [s["current"] for s in sessions].count(True) == 1
    assert c.http.post("/auth/logout", headers=fresh).status_code == 204
    assert c.http.get("/auth/me", headers=fresh).status_code == 401
    # Registration can never choose a role.
    res = c.req(
        "POST", "/auth/register", json={"email": "x@example.com", "password": PASSWORD, "role": "admin"}
    )
    assert res.status_code == 400


def reference_checks(c: Client, spec: Spec, create: Any, name: str, fname: str, owner: str) -> None:
    """`name.fname` refers to an owner-read resource: another user's row is refused like an unknown id
    (409 naming body.fname) on create and on update; the sender's own rows and the admin role pass."""
    target = spec.resources[name].fields[fname].to
    intruder = f"{owner}_2"
    theirs = create(target, owner)
    body = sample_body(spec, name, 500)
    for other, f in spec.resources[name].fields.items():
        if f.type == "ref" and other != fname:
            # The intruder's own row where only owners may refer; otherwise whoever may create one.
            own_rows = spec.resources[f.to].access.read == "owner"
            body[other] = create(f.to, intruder if own_rows else None)["id"]
    foreign = c.req("POST", f"/{name}", intruder, json={**body, fname: theirs["id"]})
    assert foreign.status_code == 409, (name, fname, foreign.status_code, foreign.text)
    assert [e["path"] for e in foreign.json()["errors"]] == [f"body.{fname}"]
    unknown = c.req(
        "POST", f"/{name}", intruder, json={**body, fname: "00000000-0000-4000-8000-000000000000"}
    )
    assert unknown.status_code == 409 and unknown.json() == foreign.json()
    # Update: the intruder's own row cannot be moved under the other user's row either.
    own = create(name, intruder, **{fname: create(target, intruder)["id"]})
    moved = c.req("PATCH", f"/{name}/{own['id']}", intruder, json={fname: theirs["id"]})
    assert moved.status_code == 409 and moved.json() == foreign.json(), moved.text
    assert c.req("PATCH", f"/{name}/{own['id']}", intruder, json={fname: own[fname]}).status_code == 200
    admin = c.req("POST", f"/{name}", "admin", json={**body, fname: theirs["id"]})
    assert admin.status_code == 201, admin.text
