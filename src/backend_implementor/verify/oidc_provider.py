"""The OpenID provider verify runs on 127.0.0.1 for apps that log users in with OpenID Connect / OAuth 2.

No network exists but loopback, so verify brings its own identity provider: a small, correct one (a thread
with http.server, like the SSRF canary). The app under test is configured with its issuer (its environment
gets `OIDC_<NAME>_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`, see verify/engine.py) and the oidc-state probe
drives logins through it.

- `/.well-known/openid-configuration`: discovery (code flow only, RS256, PKCE S256, client_secret_basic and
  client_secret_post).
- `/jwks`: the RSA key generated at start.
- `/authorize`: approves at once, logging in the account the probe set last (`next_account`); 302 to the
  redirect_uri with `code` and the `state` it was given. A bad client_id or a missing redirect_uri is a 400
  page (never a redirect, as the spec asks); other errors go back to the redirect_uri as `error=`.
- `/token`: the authorization_code grant. The client authenticates (Basic or in the body); a code works once
  (a second use is 400 invalid_grant), for its client and redirect_uri, within a minute; a PKCE challenge
  given at /authorize needs its verifier. Answers an opaque access token and an RS256 id_token (iss, sub,
  aud, exp, iat, nonce, email, email_verified) when `openid` was asked for.
- `/userinfo`: the claims of a bearer access token.

Every authorization and every token request is recorded, so a probe can tell whether the app redeemed a
code it should have refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "bimpl-verify"
CODE_TTL_S = 60
TOKEN_TTL_S = 3600
SCOPES = ("openid", "email", "profile")
CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified")


@dataclass
class OidcAccount:
    """Whom the provider logs in at the next /authorize."""

    sub: str
    email: str
    email_verified: bool = True


@dataclass
class Grant:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    account: OidcAccount
    issued: float
    used: bool = False


@dataclass
class TokenRequest:
    """One request to /token: the code it presented, and what the provider answered."""

    code: str | None
    client_id: str | None
    status: int
    error: str | None = None
    at: float = field(default_factory=time.time)


def new_account() -> OidcAccount:
    tag = secrets.token_hex(5)
    return OidcAccount(sub=f"bimpl-{tag}", email=f"bimpl-oidc-{tag}@example.com")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    """An OpenID provider on 127.0.0.1 (a free port) with one confidential client."""

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        self.lock = threading.Lock()
        self.next_account = new_account()
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, tuple[OidcAccount, float]] = {}  # access token -> account, expiry
        self.authorizations: list[dict[str, str]] = []  # the query of every /authorize
        self.token_requests: list[TokenRequest] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="bimpl-oidc", daemon=True)
        self.thread.start()

    # ---- what probes use -------------------------------------------------------------------------
    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + "/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    def owns(self, url: str) -> bool:
        """Whether a URL is one of this provider's (same scheme, host and port as the issuer)."""
        parts, mine = urlsplit(url), urlsplit(self.issuer)
        host = (parts.hostname or "").lower()
        same_host = host == mine.hostname or (host == "localhost" and mine.hostname == "127.0.0.1")
        return parts.scheme == mine.scheme and same_host and parts.port == mine.port

    def set_account(self, account: OidcAccount | None = None) -> OidcAccount:
        """The account the next /authorize logs in (a new one when none is given)."""
        with self.lock:
            self.next_account = account or new_account()
            return self.next_account

    def redeemed(self, code: str) -> list[TokenRequest]:
        """The token requests that presented `code` (whatever the provider answered them)."""
        with self.lock:
            return [t for t in self.token_requests if t.code == code]

    def metadata(self) -> dict[str, Any]:
        iss = self.issuer
        return {
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "jwks_uri": iss + "/jwks",
            "userinfo_endpoint": iss + "/userinfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "claims_supported": list(CLAIMS),
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # ---- the endpoints ---------------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """(status, headers, body) for GET/POST /authorize."""
        with self.lock:
            self.authorizations.append(dict(query))
        client_id, redirect_uri = query.get("client_id"), query.get("redirect_uri")
        if client_id != self.client_id:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client_id"}
        parts = urlsplit(redirect_uri or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return (
                400,
                {},
                {"error": "invalid_request", "error_description": "redirect_uri missing or invalid"},
            )
        state = query.get("state")

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
            if state is not None:
                params = {**params, "state": state}
            sep = "&" if parts.query else ""
            location = urlunsplit(parts._replace(query=parts.query + sep + urlencode(params)))
            return 302, {"Location": location, "Cache-Control": "no-store"}, None

        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method", "plain")
        if challenge is not None and method != "S256":
            return back(
                {"error": "invalid_request", "error_description": "code_challenge_method must be S256"}
            )
        if challenge is not None and not 43 <= len(challenge) <= 128:
            return back({"error": "invalid_request", "error_description": "malformed code_challenge"})
        scope = query.get("scope", "")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.grants[code] = Grant(code, client_id, redirect_uri or "", scope, state, query.get("nonce"),
                                      challenge, self.next_account, time.time())  # fmt: skip
        return back({"code": code})

    def token(self, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """(status, headers, body) for POST /token."""
        code = form.get("code")
        client_id, error = self._client(headers, form)
        if error:
            return self._token_error(code, client_id, 401, "invalid_client", error)
        if form.get("grant_type") != "authorization_code":
            return self._token_error(
                code, client_id, 400, "unsupported_grant_type", "only authorization_code"
            )
        with self.lock:
            grant = self.grants.get(code or "")
            if grant is None:
                why = "unknown code"
            elif grant.used:
                why = "the code was already used"
            elif time.time() - grant.issued > CODE_TTL_S:
                why = "the code expired"
            elif grant.client_id != client_id:
                why = "the code was issued to another client"
            elif form.get("redirect_uri") != grant.redirect_uri:
                why = "redirect_uri does not match the authorization request"
            elif grant.code_challenge is not None and not _verifier_ok(form.get("code_verifier"), grant):
                why = "PKCE verification failed"
            elif grant.code_challenge is None and form.get("code_verifier"):
                why = "code_verifier without a code_challenge"
            else:
                why = ""
            if grant is not None and why != "unknown code":
                grant.used = True  # one try per code, whatever happened
        if why:
            return self._token_error(code, client_id, 400, "invalid_grant", why)
        assert grant is not None
        now = int(time.time())
        access = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = (grant.account, now + TOKEN_TTL_S)
            self.token_requests.append(TokenRequest(code, client_id, 200))
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL_S,
                                "scope": grant.scope}  # fmt: skip
        if "openid" in grant.scope.split():
            claims: dict[str, Any] = {"iss": self.issuer, "sub": grant.account.sub, "aud": grant.client_id,
                                      "exp": now + 600, "iat": now, "email": grant.account.email,
                                      "email_verified": grant.account.email_verified}  # fmt: skip
            if grant.nonce is not None:
                claims["nonce"] = grant.nonce
            body["id_token"] = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}, body

    def userinfo(self, headers: Any) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        with self.lock:
            found = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or found[1] < time.time():
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, {"error": "invalid_token"}
        account = found[0]
        return 200, {}, {"sub": account.sub, "email": account.email, "email_verified": account.email_verified}

    def _client(self, headers: Any, form: dict[str, str]) -> tuple[str | None, str]:
        """(client_id, error): Basic authentication (RFC 6749 2.3.1: form-encoded id and secret) or
        client_id + client_secret in the body; never both."""
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            if "client_secret" in form:
                return None, "more than one client authentication method"
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None, "malformed Basic credentials"
            cid, sep, secret = raw.partition(":")
            if not sep:
                return None, "malformed Basic credentials"
            cid, secret = unquote_plus(cid), unquote_plus(secret)
        else:
            cid, secret = form.get("client_id") or "", form.get("client_secret") or ""
        if cid != self.client_id or not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            return cid or None, "client authentication failed"
        return cid, ""

    def _token_error(
        self, code: str | None, client_id: str | None, status: int, error: str, why: str
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.token_requests.append(TokenRequest(code, client_id, status, error))
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="bimpl-verify"'
        return status, headers, {"error": error, "error_description": why}


def _verifier_ok(verifier: str | None, grant: Grant) -> bool:
    if not verifier or not 43 <= len(verifier) <= 128:
        return False
    return hmac.compare_digest(s256(verifier), grant.code_challenge or "")


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            raw = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

        def _form(self) -> dict[str, str] | None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return None
            if length > 64 * 1024:
                return None
            raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            return dict(parse_qsl(raw, keep_blank_values=True))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if parts.path == "/.well-known/openid-configuration":
                return self._send(200, {}, provider.metadata())
            if parts.path == "/jwks":
                return self._send(200, {}, provider.jwks)
            if parts.path == "/authorize":
                return self._send(*provider.authorize(query))
            if parts.path == "/userinfo":
                return self._send(*provider.userinfo(self.headers))
            return self._send(404, {}, {"error": "not_found"})

        do_HEAD = do_GET

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            form = self._form()
            if form is None:
                return self._send(400, {}, {"error": "invalid_request"})
            if path == "/token":
                return self._send(*provider.token(self.headers, form))
            if path == "/authorize":
                return self._send(*provider.authorize(form))
            if path == "/userinfo":
                return self._send(*provider.userinfo(self.headers))
            return self._send(404, {}, {"error": "not_found"})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def oidc_provider(**kwargs: Any):
    p = OidcProvider(**kwargs)
    try:
        yield p
    finally:
        p.close()
