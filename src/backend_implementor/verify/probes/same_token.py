"""The same token issued to two users who chose the same password (CWE-863)."""

from __future__ import annotations

from .base import Context, Exchange, jwt_claims, rand

ID = "same-token"
CWE = 863
SECONDS = 8
MAX_REQUESTS = 6


IDENTITY_CLAIMS = ("sub", "id", "userId", "user_id", "uid", "email", "username", "user")


def run(ctx: Context) -> None:
    first = ctx.user(0)
    claims = jwt_claims(first.token) if first else None
    if claims and any(claims.get(k) not in (None, "") for k in IDENTITY_CLAIMS):
        ctx.skip("the login token is a JWT naming its user: two users cannot be given the same one")
        return
    if ctx.auth is not None and ctx.auth.register_path is None:
        ctx.skip("no signup: verify cannot give two accounts the same password")
        return
    password = f"Bimpl-{rand(10)}-Same9!"
    a = ctx.new_user(password=password)
    b = ctx.new_user(password=password)
    if a is None or b is None or not a.token or not b.token:
        return
    if a.token == b.token:
        ctx.add(
            ID,
            CWE,
            "Two users with the same password received the same token",
            "critical",
            "Bind tokens to the user (sub claim or a random session id), never derive them from the password.",
            ctx.evidence(
                Exchange(
                    f"POST {ctx.auth.login_path if ctx.auth else 'login'} as {a.ident} and as {b.ident}, same password",
                    "both responses carry an identical token (value withheld)",
                )
            ),
        )
