"""Identity: teacher keys, signed participant tokens, and the role check at the edge.

A participant token is an HS256 JWT carrying role, session, participant id and
display name, signed with the node's secret and expiring after ``token_ttl``.
Other-language clients never need to read it; they pass it back in ``join``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jwt
from fastapi import Depends, Header, HTTPException

from realtime.roles import Action, Role, allowed, refusal
from server.store import Store, User

_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    participant_id: str
    session_id: str
    role: Role
    name: str
    #: set for a student signed in with their personal code: the course whose roster they are on
    course_id: str | None = None
    #: the device key a guest joined from (server.admission), so a teacher's removal holds across joins
    device: str | None = None


class TokenError(Exception):
    """The token is missing, forged, expired or not for this server."""


def load_secret(data_dir: Path) -> bytes:
    """The node's signing secret, created on first start (owner-readable only)."""
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def issue_token(secret: bytes, claims: Claims, ttl: float) -> str:
    now = int(time.time())
    payload = {
        "sub": claims.participant_id,
        "sid": claims.session_id,
        "role": str(claims.role),
        "name": claims.name,
        **({"crs": claims.course_id} if claims.course_id is not None else {}),
        **({"dev": claims.device} if claims.device is not None else {}),
        "iat": now,
        "exp": now + int(ttl),
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def verify_token(secret: bytes, token: str) -> Claims:
    try:
        payload = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub", "sid"]})
        course, device = payload.get("crs"), payload.get("dev")
        return Claims(
            payload["sub"], payload["sid"], Role(payload["role"]), str(payload["name"]),
            None if course is None else str(course), None if device is None else str(device),
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("Your token has expired; join again with the join code.") from None
    except (jwt.InvalidTokenError, KeyError, ValueError):
        raise TokenError("That token is not valid for this server.") from None


def bearer(authorization: str | None = Header(default=None)) -> str:
    """The key from an ``Authorization: Bearer <key>`` header (401 if absent)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "Send your key as 'Authorization: Bearer <key>'.")
    return authorization[7:].strip()


def require(role: Role, action: Action) -> None:
    """403 unless the role table allows this action."""
    if not allowed(role, action):
        raise HTTPException(403, refusal(role, action))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a teacher or designer by key, or a participant by token."""

    role: Role
    user: User | None = None
    claims: Claims | None = None

    def keyed(self, action: Action) -> User:
        """The calling user, for actions that need a key (403 for tokens or the wrong role)."""
        require(self.role, action)
        if self.user is None:
            raise HTTPException(403, "Use your key for this, not a participant token.")
        return self.user


def principal_dependency(store: Store, secret: bytes) -> Callable[..., Principal]:
    """A FastAPI dependency resolving the bearer credential to a Principal."""

    def principal(key: str = Depends(bearer)) -> Principal:
        user = store.user_by_key(key)
        if user is not None:
            return Principal(Role(user.role), user=user)
        try:
            claims = verify_token(secret, key)
        except TokenError as exc:
            raise HTTPException(401, f"Unknown key or token: {exc}") from None
        return Principal(claims.role, claims=claims)

    return principal
