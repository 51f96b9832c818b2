"""Earned badges as Open Badges 3.0 credentials a learner can take anywhere.

A badge earned in a practical is issued as an ``OpenBadgeCredential`` (1EdTech OB 3.0,
a W3C Verifiable Credential 2.0) and signed as a VC-JWT (OB 3.0 §8.2, "JSON Web Token
Proof Format"): the JWT payload is the credential itself, plus the registered claims
``iss``/``nbf``/``jti``/``sub`` that §8.2 maps from ``issuer.id``, ``validFrom``, ``id``
and ``credentialSubject.id``. Anyone holding the token can check it offline, without
asking this node: a school server on a LAN with no internet must still hand out badges
that a portfolio or a wallet elsewhere can trust.

Why RS256: §8.2 makes RS256 the one algorithm every verifier must support; anything
else "limits interoperability". The JOSE header carries the public key as ``jwk`` (so a
verifier needs nothing else) and a ``kid`` that is its RFC 7638 thumbprint written as an
RFC 9278 URI, the same ``kid`` as in :meth:`BadgeIssuer.jwks`.

The signing key is a file beside the database (``<data_dir>/issuer.key``), not derived
from ``secret.key``: losing it means every badge issued so far can no longer be tied to
this node, and a new key makes a new issuer as far as verifiers pinning the old one are
concerned. Back it up with the database; never copy it anywhere it could be read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

#: OB 3.0 requires exactly these two first, in this order (VC 2.0, then the OB context).
CONTEXTS = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
ALGORITHM = "RS256"
_KEY_BITS = 2048


@dataclass(frozen=True)
class BadgeAward:
    id: str               # award id, e.g. "aw_3f2a..." (unique)
    badge_key: str        # stable key of the badge definition, e.g. "chemistry-bench/steady-hands"
    name: str             # "Steady hands"
    description: str      # "Finished the practical with no mistakes."
    criteria: str         # narrative of the criteria, human text
    course_id: str
    course_name: str
    student_id: str
    student_name: str
    awarded_at: float     # unix seconds


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def iso_z(unix: float) -> str:
    """UTC to the second with 'Z': §8.2 requires ``nbf`` to equal ``validFrom``, and
    ``nbf`` is whole seconds, so a fraction here would make the badge fail to verify."""
    return datetime.fromtimestamp(int(unix), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The issuer key, created on first use and owner-readable from its first byte.

    Written to a private temporary file and hard-linked into place, so a second worker
    starting at the same moment either wins or reads the winner's complete key, never
    half a file, and two nodes' keys never get mixed.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            tmp.chmod(0o600)  # the umask may have taken bits from the mode above; make it exact
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker won the race; use its key
        finally:
            tmp.unlink(missing_ok=True)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key; badges are signed with RS256.")
    return key


class BadgeIssuer:
    """Loads or creates the node's issuer signing key at <data_dir>/issuer.key (RSA 2048,
    PEM, chmod 600; created on first use like server/auth.load_secret creates secret.key)."""

    def __init__(self, data_dir: Path, name: str = "Amaliy") -> None:
        self.name = name
        self._key = _load_or_create_key(Path(data_dir) / "issuer.key")
        numbers = self._key.public_key().public_numbers()
        public = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
        # RFC 7638: SHA-256 over the required members, sorted, no whitespace
        thumb = hashlib.sha256(json.dumps(public, separators=(",", ":"), sort_keys=True).encode()).digest()
        self.kid = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + base64.urlsafe_b64encode(thumb).rstrip(b"=").decode()
        self._jwk = {**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """The public key set; never carries a private member (``d``, ``p``, ...)."""
        return {"keys": [dict(self._jwk)]}

    def _issuer(self, base_url: str) -> dict[str, Any]:
        return {"id": f"{base_url}/api/badges/issuer", "type": ["Profile"], "name": self.name, "url": base_url}

    def profile(self, base_url: str) -> dict[str, Any]:
        """The issuer Profile served at its own id, so ``issuer.id`` dereferences."""
        return {"@context": list(CONTEXTS), **self._issuer(base_url)}

    def credential(self, award: BadgeAward, base_url: str) -> dict[str, Any]:
        """The unsigned OpenBadgeCredential for one award.

        The learner is named by a URN of their id (the subject needs an ``id`` for
        ``sub``) and, for people reading the badge, by name as a plain ``IdentityObject``.
        """
        when = iso_z(award.awarded_at)
        return {
            "@context": list(CONTEXTS),
            "id": f"{base_url}/api/badges/{quote(award.id)}",
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": self._issuer(base_url),
            "validFrom": when,
            "awardedDate": when,
            "name": award.name,
            "description": f"{award.name}, earned in {award.course_name}.",
            "credentialSubject": {
                "id": f"urn:amaliy:learner:{quote(award.student_id)}",
                "type": ["AchievementSubject"],
                "identifier": [{"type": "IdentityObject", "identityType": "name", "hashed": False, "identityHash": award.student_name}],
                "achievement": {
                    "id": f"{base_url}/api/badges/achievements/{quote(award.badge_key)}",
                    "type": ["Achievement"],
                    "achievementType": "Badge",
                    "name": award.name,
                    "description": award.description,
                    "criteria": {"narrative": award.criteria},
                },
            },
        }

    def sign(self, credential: dict[str, Any]) -> str:
        """The credential as a compact VC-JWT: payload = credential + §8.2 registered claims.

        No ``exp`` (our badges do not expire, so there is no ``validUntil``) and no ``iat``:
        §8.2 allows only alg/kid/jwk/typ in the header and defines no other claim.
        """
        valid_from = datetime.fromisoformat(credential["validFrom"].replace("Z", "+00:00"))
        claims = {
            "iss": credential["issuer"]["id"],
            "nbf": int(valid_from.timestamp()),
            "jti": credential["id"],
            "sub": credential["credentialSubject"]["id"],
        }
        header = {"typ": "JWT", "kid": self.kid, "jwk": dict(self._jwk)}
        return jwt.encode({**credential, **claims}, self._key, algorithm=ALGORITHM, headers=header)
