"""verify's own OpenID provider (verify/oidc_provider.py), driven over HTTP as an app's OIDC client would."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from backend_implementor.verify.oidc_provider import OidcAccount, oidc_provider, s256

APP = "http://127.0.0.1:5999/auth/oidc/main/callback"


@pytest.fixture
def provider():
    with oidc_provider() as p:
        yield p


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=5) as c:
        yield c


def _authorize(http, provider, **extra) -> dict[str, list[str]]:
    query = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": APP,
             "scope": "openid email", "state": "st-1", "nonce": "n-1", **extra}  # fmt: skip
    resp = http.get(provider.authorization_endpoint + "?" + urlencode(query))
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(APP + "?")
    return parse_qs(urlsplit(location).query)


def _basic(provider) -> dict[str, str]:
    raw = f"{provider.client_id}:{provider.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_discovery_names_the_endpoints_and_what_they_support(provider, http):
    meta = http.get(provider.issuer + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == provider.issuer and provider.issuer.startswith("http://127.0.0.1:")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert meta[key].startswith(provider.issuer + "/")
    assert meta["response_types_supported"] == ["code"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert "openid" in meta["scopes_supported"] and "email_verified" in meta["claims_supported"]
    assert meta["subject_types_supported"]
    keys = http.get(meta["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"] == provider.kid


def test_code_flow_with_pkce_gives_an_id_token_that_verifies(provider, http):
    account = provider.set_account(OidcAccount("sub-42", "ada@example.com", True))
    verifier = secrets.token_urlsafe(48)
    got = _authorize(http, provider, code_challenge=s256(verifier), code_challenge_method="S256")
    assert got["state"] == ["st-1"]
    code = got["code"][0]
    # client_secret_post this time (Basic in the reuse test)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP, "code_verifier": verifier,
            "client_id": provider.client_id, "client_secret": provider.client_secret}  # fmt: skip
    resp = http.post(provider.token_endpoint, data=form)
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and tokens["access_token"]
    assert resp.headers["cache-control"] == "no-store"
    jwk = http.get(provider.issuer + "/jwks").json()["keys"][0]
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == jwk["kid"]
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience=provider.client_id,
                        issuer=provider.issuer)  # fmt: skip
    assert claims["sub"] == account.sub and claims["nonce"] == "n-1"
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert claims["exp"] > claims["iat"]
    info = http.get(
        provider.issuer + "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    assert info.json() == {"sub": "sub-42", "email": "ada@example.com", "email_verified": True}
    assert (
        http.get(provider.issuer + "/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert [t.status for t in provider.redeemed(code)] == [200]


def test_a_code_works_once(provider, http):
    code = _authorize(http, provider)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP}
    first = http.post(provider.token_endpoint, data=form, headers=_basic(provider))
    assert first.status_code == 200, first.text
    again = http.post(provider.token_endpoint, data=form, headers=_basic(provider))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert [t.status for t in provider.redeemed(code)] == [200, 400]


def test_the_token_endpoint_checks_the_client_the_verifier_and_the_redirect_uri(provider, http):
    verifier = secrets.token_urlsafe(48)
    code = _authorize(http, provider, code_challenge=s256(verifier), code_challenge_method="S256")["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP}
    wrong = {"client_id": provider.client_id, "client_secret": "wrong"}
    assert http.post(provider.token_endpoint, data={**form, **wrong}).status_code == 401
    bad = http.post(provider.token_endpoint, data={**form, "code_verifier": secrets.token_urlsafe(48)},
                    headers=_basic(provider))  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    code = _authorize(http, provider)["code"][0]
    other = http.post(provider.token_endpoint, headers=_basic(provider),
                      data={**form, "code": code, "redirect_uri": APP + "x"})  # fmt: skip
    assert other.status_code == 400 and "redirect_uri" in other.json()["error_description"]


def test_authorize_refuses_unknown_clients_without_redirecting(provider, http):
    resp = http.get(provider.authorization_endpoint, params={"response_type": "code", "client_id": "someone",
                                                               "redirect_uri": APP, "state": "s"})  # fmt: skip
    assert resp.status_code == 400 and "location" not in resp.headers
    resp = http.get(provider.authorization_endpoint, params={"response_type": "code",
                                                               "client_id": provider.client_id})  # fmt: skip
    assert resp.status_code == 400
    assert provider.owns(provider.authorization_endpoint + "?x=1")
    assert not provider.owns("https://accounts.example.com/authorize")
