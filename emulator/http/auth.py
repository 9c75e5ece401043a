"""fal's `Authorization` header: `Key <FAL_KEY>` (the official clients) or `Bearer <token>` (resellers).

Any key is accepted unless the `keys` setting lists the accepted ones.
Sources: fal_client 1.0.3 `auth.py`; reseller docs (`Authorization: Bearer ...`), seed 000.
"""

from __future__ import annotations

from starlette.requests import Request

from fal_emulator.errors import AuthenticationError
from fal_emulator.http.rendering import emulator_of

SCHEMES = ("key", "bearer")


def authenticate(request: Request) -> str:
    """The credential the request carries. Raises AuthenticationError (401) when it is missing,
    malformed, or not one of the accepted keys."""
    return check_authorization(request.headers.get("authorization", ""), emulator_of(request).settings.keys)


def check_authorization(header: str, accepted: tuple[str, ...]) -> str:
    """The credential of an `Authorization` header value; `accepted`: the keys accepted (empty: any).
    Raises AuthenticationError (401) when it is missing, malformed, or not accepted."""
    header = header.strip()
    if not header:
        raise AuthenticationError("Missing Authorization header. Send 'Authorization: Key <FAL_KEY>'.")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() not in SCHEMES or not credential:
        raise AuthenticationError("Invalid Authorization header format. Expected 'Key <FAL_KEY>' or 'Bearer <token>'.")
    if accepted and credential not in accepted:
        raise AuthenticationError("No user found for Key ID and Secret")
    return credential
