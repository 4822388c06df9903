"""How verify registers and logs in to a backend: the `--auth`, `--user`, `--admin`, `--token` and
`--cookie` options, what the OpenAPI document shows, and the shapes of register bodies.

An `AuthConfig` says where and how to log in; probes/accounts.py does the logging in (JSON or form bodies,
tokens or session cookies, CSRF tokens) for the probes and the contract stage alike.

Detection follows bimpl's own convention first (POST /auth/register + /auth/login with {email, password},
token in `access_token`), then register/login-like POST paths in the document (JSON or form bodies, a
`{"user": {...}}` envelope, OAuth2 password grants), reading the body fields, the token key of the login
response and how the token is sent back (the document's security schemes). Without a document, or when it
shows no login, probes/accounts.py looks for one at the usual paths."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .openapi_doc import IDENT_NAME_RE, base_path, body_schema, deref, example_value, merged_schema

CONVENTION = "bimpl convention"
FROM_DOCUMENT = "OpenAPI document"
FROM_OPTION = "--auth"
FROM_PROBING = "found by probing the usual paths"


@dataclass
class AuthConfig:
    register_path: str | None = "/auth/register"  # None: no signup (accounts come from --user)
    login_path: str = "/auth/login"
    user_field: str = "email"  # "email" or "username" (or what the API calls it)
    password_field: str = "password"
    token_key: str = "access_token"  # JSON key of the token in the login (or register) response
    register_extra: dict[str, Any] = field(default_factory=dict)  # other fields registration requires
    source: str = field(default=CONVENTION, compare=False)  # where it came from, for the report
    # How the bodies are sent: "json" or "form" (urlencoded), and an envelope key ({"user": {...}}).
    login_encoding: str = field(default="json", compare=False)
    register_encoding: str = field(default="json", compare=False)
    envelope: str | None = field(default=None, compare=False)
    login_extra: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. grant_type=password
    register_schema: dict[str, Any] = field(default_factory=dict, compare=False)
    # How a token goes back: a header and a prefix ("Bearer"); prefix None = find out (Bearer, Token, raw).
    token_header: str = field(default="Authorization", compare=False)
    token_prefix: str | None = field(default="Bearer", compare=False)

    def credentials(self, ident: str, password: str) -> dict[str, str]:
        """The login body's credentials (and the core of the register body)."""
        return {self.user_field: ident, self.password_field: password}

    def login_body(self, ident: str, password: str) -> dict[str, Any]:
        return self.wrap({**self.login_extra, **self.credentials(ident, password)})

    def wrap(self, body: dict[str, Any]) -> dict[str, Any]:
        return {self.envelope: body} if self.envelope else body


@dataclass
class Account:
    """An existing account given with --user / --admin."""

    ident: str
    password: str


# ---------------------------------------------------------------- options


class AuthOptionError(ValueError):
    """A malformed --auth (or --user, --admin, --token, --cookie) value; the message is for the user."""


_OPTION_KEYS = {
    "register": "register_path",
    "login": "login_path",
    "user": "user_field",
    "password": "password_field",
    "token": "token_key",
    "encoding": "login_encoding",
}


def parse_auth_option(text: str) -> AuthConfig:
    """`register=/signup,login=/login,user=email,password=password,token=token,encoding=form` (any subset;
    the rest keeps bimpl's convention); `register=none` for no signup; `extra.NAME=VALUE` adds a field to
    the registration body."""
    cfg = AuthConfig(source=FROM_OPTION)
    given = False
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise AuthOptionError(f"--auth: expected key=value, got {part!r}")
        if key.startswith("extra.") and len(key) > len("extra."):
            cfg.register_extra[key[len("extra.") :]] = value
        elif key == "register" and value.lower() == "none":
            cfg.register_path = None
        elif key in _OPTION_KEYS:
            if key in ("register", "login") and not value.startswith("/"):
                raise AuthOptionError(f"--auth: {key} must be a path starting with '/', got {value!r}")
            if key == "encoding":
                if value not in ("json", "form"):
                    raise AuthOptionError(f"--auth: encoding must be json or form, got {value!r}")
                cfg.register_encoding = value
            setattr(cfg, _OPTION_KEYS[key], value)
        else:
            known = ", ".join([*_OPTION_KEYS, "extra.NAME"])
            raise AuthOptionError(f"--auth: unknown key {key!r} (known: {known})")
        given = True
    if not given:
        raise AuthOptionError(
            "--auth: empty; e.g. register=/signup,login=/login,user=email,password=password"
        )
    return cfg


def parse_account(text: str, option: str) -> Account:
    """`NAME:PASSWORD` (the password may itself contain colons)."""
    ident, sep, password = text.partition(":")
    if not sep or not ident or not password:
        raise AuthOptionError(f"{option}: expected NAME:PASSWORD, got {text!r}")
    return Account(ident, password)


def parse_cookie_option(text: str) -> dict[str, str]:
    """`name=value` or a whole Cookie header `a=1; b=2`."""
    cookies = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise AuthOptionError(f"--cookie: expected NAME=VALUE, got {part!r}")
        cookies[name.strip()] = value.strip()
    if not cookies:
        raise AuthOptionError("--cookie: empty; e.g. --cookie 'connect.sid=s%3A...'")
    return cookies


# ---------------------------------------------------------------- detection

TOKEN_KEYS = ("access_token", "accessToken", "token", "jwt", "id_token", "idToken", "authToken",
              "auth_token", "sessionToken", "session_token", "bearer", "session", "sessionId", "session_id")  # fmt: skip
# Other names for the access token: apiToken, auth-token, bearerJwt (never a refresh or CSRF token).
TOKEN_KEY_RE = re.compile(r"^(api|auth|access|bearer|session|login|user)?[_-]?(token|jwt)$", re.I)
USER_FIELDS = ("email", "username", "user_name", "userName", "login", "user", "name", "mail")
CSRF_NAME_RE = re.compile(r"csrf|xsrf|authenticity", re.I)
_LOGIN_RE = re.compile(r"(^|/)(log-?in|sign-?in|sessions?|tokens?|auth/token|authenticate)(/|$)", re.I)
_REGISTER_RE = re.compile(r"(^|/)(register|sign-?up|users|accounts|create_user|join)(/|$)", re.I)
_LOGIN_WORDS = re.compile(
    r"sign[\s_-]?in|log[\s_-]?in|authenticat|(get|issue|obtain)[\s_-]?(a[\s_-]?)?token", re.I
)
# Words of an operation that creates an account, wherever its path is (POST /api/readers "signUp").
_REGISTER_WORDS = re.compile(
    r"sign[\s_-]?up|regist(er|ration)|create[\s_-]?(an?[\s_-]?)?(new[\s_-]?)?(user|account|member|profile)|"
    r"new[\s_-]?(user|account)|join",
    re.I,
)


def _post_ops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = doc.get("paths")
    prefix = base_path(doc)
    out = {}
    for path, item in paths.items() if isinstance(paths, dict) else ():
        post = deref(doc, item).get("post") if isinstance(item, dict) else None
        if isinstance(post, dict):
            out[prefix + str(path)] = post
    return out


def _pick(paths: list[str], rx: re.Pattern[str]) -> str | None:
    # The shortest match without path parameters: "/auth/login" over "/auth/login/{provider}".
    hits = sorted((p for p in paths if rx.search(p) and "{" not in p), key=len)
    return hits[0] if hits else None


def _envelope(schema: dict[str, Any], doc: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A body whose only property is an object holding the credentials: {"user": {...}} (RealWorld)."""
    props = schema.get("properties") or {}
    if len(props) == 1:
        ((key, inner),) = props.items()
        inner = merged_schema(doc, inner)
        if isinstance(inner.get("properties"), dict):
            return key, inner
    return None, schema


def fields_of(schema: dict[str, Any]) -> tuple[str | None, str | None]:
    """The user and password fields of a login or register body schema."""
    props = schema.get("properties") or {}
    user = next((f for f in USER_FIELDS if f in props), None)
    user = user or next((f for f in props if IDENT_NAME_RE.search(f) or "mail" in f.lower()), None)
    password = next(
        (f for f in props if "pass" in f.lower() and not is_confirm_field(f)),
        None,
    )
    return user, password


def is_confirm_field(name: str) -> bool:
    low = name.lower().replace("_", "").replace("-", "")
    return any(w in low for w in ("confirm", "repeat", "retype", "verify", "again")) or low in (
        "password2",
        "passwordconfirmation",
        "cpassword",
    )


def detect_auth(doc: dict[str, Any] | None) -> AuthConfig | None:
    """bimpl's convention without a document or when it has bimpl's paths; otherwise what the document
    shows. None when the document describes no way to log in."""
    default = AuthConfig()
    if not doc:
        return default
    posts = _post_ops(doc)
    if default.register_path in posts and default.login_path in posts:
        register, login, source = default.register_path, default.login_path, CONVENTION
    else:
        # A description may mention logging in ("log in first"): a login is named by its id or summary.
        login = _pick(list(posts), _LOGIN_RE) or _by_words(
            doc, posts, None, _LOGIN_WORDS, unless=_REGISTER_WORDS, keys=("operationId", "summary")
        )
        register = _pick([p for p in posts if p != login], _REGISTER_RE) or _by_words(
            doc, posts, login, _REGISTER_WORDS
        )
        source = FROM_DOCUMENT
        if login is None:
            return None
    reg_schema, reg_encoding = body_schema(doc, posts[register]) if register else (None, "json")
    login_schema, login_encoding = body_schema(doc, posts[login])
    envelope, login_inner = _envelope(login_schema or {}, doc)
    reg_envelope, reg_inner = _envelope(reg_schema or {}, doc)
    user_field, password_field = fields_of(login_inner)
    if not (user_field and password_field):
        user_field, password_field = fields_of(reg_inner)
    if source == FROM_DOCUMENT and not (user_field and password_field):
        return None
    user_field, password_field = user_field or default.user_field, password_field or default.password_field
    login_extra = {
        name: example_value(doc, prop, name)
        for name, prop in (login_inner.get("properties") or {}).items()
        if name in (login_inner.get("required") or [])
        and name not in (user_field, password_field)
        and not CSRF_NAME_RE.search(name)  # the form page's hidden field supplies it
    }
    # Other fields registration requires; probes/accounts.py gives the identity-like ones (an email next to
    # the username, a confirmation of the password) fresh values per user.
    reg_props = reg_inner.get("properties") or {}
    extra = {
        name: example_value(doc, reg_props[name], name)
        for name in reg_inner.get("required") or []
        if name not in (user_field, password_field) and name in reg_props and not CSRF_NAME_RE.search(name)
    }
    header, prefix = _token_scheme(doc, login)
    return AuthConfig(
        register_path=register,
        login_path=login,
        user_field=user_field,
        password_field=password_field,
        token_key=_token_key_from_responses(doc, posts[login]) or default.token_key,
        register_extra=extra,
        source=source,
        login_encoding=login_encoding,
        register_encoding=reg_encoding,
        envelope=envelope or reg_envelope,
        login_extra=login_extra,
        register_schema=reg_inner if register else {},
        token_header=header,
        token_prefix=prefix,
    )


def _by_words(
    doc: dict[str, Any],
    posts: dict[str, dict[str, Any]],
    other: str | None,
    words_rx: re.Pattern[str],
    *,
    unless: re.Pattern[str] | None = None,
    keys: tuple[str, ...] = ("operationId", "summary", "description"),
) -> str | None:
    """The login or signup an operation's words name (POST /api/auth "Sign in"), when no path says it, with
    a password in its body; none whose words match `unless`."""
    for path, op in posts.items():
        if path == other or "{" in path:
            continue
        words = " ".join(str(op.get(k) or "") for k in keys)
        if unless is not None and unless.search(words):
            continue
        schema, _ = body_schema(doc, op)
        if words_rx.search(words) and fields_of(_envelope(schema or {}, doc)[1])[1]:
            return path
    return None


def _token_scheme(doc: dict[str, Any], login_path: str) -> tuple[str, str | None]:
    """How a token is sent: from the security schemes the document's operations use. Where operations
    accept alternatives (an API key or a bearer token), the login's token goes as the bearer one."""
    components = doc.get("components") or {}
    schemes = components.get("securitySchemes") or doc.get("securityDefinitions") or {}
    used = [name for req in doc.get("security") or [] if isinstance(req, dict) for name in req]
    for item in (doc.get("paths") or {}).values():
        for op in (deref(doc, item) or {}).values():
            if isinstance(op, dict):
                used += [n for req in op.get("security") or [] if isinstance(req, dict) for n in req]

    def bearer_first(name: str) -> int:
        scheme = deref(doc, schemes.get(name))
        scheme = scheme if isinstance(scheme, dict) else {}
        kind = str(scheme.get("type", "")).lower()
        if kind in ("http", "oauth2", "openidconnect"):
            return 0
        return 1 if str(scheme.get("name", "")).lower() == "authorization" else 2

    for name in sorted(dict.fromkeys([*used, *schemes]), key=bearer_first):
        scheme = deref(doc, schemes.get(name))
        if not isinstance(scheme, dict):
            continue
        kind = str(scheme.get("type", "")).lower()
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return "Authorization", "Bearer"
        if kind in ("oauth2", "openidconnect"):
            return "Authorization", "Bearer"
        if kind == "apikey" and scheme.get("in") == "header" and scheme.get("name"):
            header = str(scheme["name"])
            if header.lower() == "authorization":
                return "Authorization", None  # "Bearer x", "Token x" or "x": accounts.py finds out
            return header, ""
    return "Authorization", "Bearer"


def _token_key_from_responses(doc: dict[str, Any], op: dict[str, Any]) -> str | None:
    for code, resp in (op.get("responses") or {}).items():
        if not str(code).startswith("2"):
            continue
        resp = deref(doc, resp)
        content = resp.get("content") or {}
        raw = (content.get("application/json") or {}).get("schema") or resp.get("schema") or {}
        key = _token_key_in(doc, raw, 0)
        if key:
            return key
    return None


def _token_key_in(doc: dict[str, Any], schema: Any, depth: int) -> str | None:
    props = merged_schema(doc, schema).get("properties") or {}
    key = next((k for k in TOKEN_KEYS if k in props), None) or next(
        (k for k in props if TOKEN_KEY_RE.match(k)), None
    )
    if key or depth > 3:
        return key
    for sub in props.values():
        key = _token_key_in(doc, sub, depth + 1)
        if key:
            return key
    return None


# ---------------------------------------------------------------- users and tokens


def new_credentials(cfg: AuthConfig) -> tuple[str, str]:
    """A fresh user (an e-mail address when the user field is one, else letters and digits only, which
    every username rule accepts) and a password strong enough for the usual rules."""
    tag = secrets.token_hex(4)
    field_schema = (cfg.register_schema.get("properties") or {}).get(cfg.user_field) or {}
    if "mail" in cfg.user_field.lower() or field_schema.get("format") == "email":
        ident = f"bimpl{tag}@example.com"
    else:
        ident = fit_length(f"bimpl{tag}", field_schema)
    return ident, f"Bimpl-{secrets.token_hex(5)}-Pw9!"


def fit_length(value: str, schema: dict[str, Any]) -> str:
    hi, lo = schema.get("maxLength"), int(schema.get("minLength") or 0)
    if isinstance(hi, int) and len(value) > hi:
        value = value[:1] + value[-(hi - 1) :] if hi > 1 else value[:hi]
    if len(value) < lo:
        value += "x" * (lo - len(value))
    return value


def find_token(data: Any, preferred: str | None = None, _depth: int = 0) -> str | None:
    """The token in a login/register response body: the `preferred` key, then the usual names, also inside
    an envelope such as {"data": {"token": ...}} or {"user": {"token": ...}}."""
    if not isinstance(data, dict) or _depth > 4:
        return None
    for key in (preferred, *TOKEN_KEYS) if preferred else TOKEN_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    for key, value in data.items():
        if TOKEN_KEY_RE.match(str(key)) and isinstance(value, str) and len(value) >= 16:
            return value
    for value in data.values():
        found = find_token(value, preferred, _depth + 1)
        if found:
            return found
    return None
