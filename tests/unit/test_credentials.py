"""Badges are Open Badges 3.0 credentials signed as VC-JWT (OB 3.0 §8.2), and other people's
verifiers accept them: jwcrypto checks the JWS against our published JWKS, and openbadgeslib's
OB 3.0 verifier checks signature, registered claims and credential structure, offline, with
the public key as its trust anchor. Nothing here verifies with our own code."""

from __future__ import annotations

import base64
import json
import re
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk, jws
from jwcrypto import jwt as jwcrypto_jwt
from openbadgeslib.ob3 import OB3VerificationError, OB3Verifier

from server.credentials import BadgeAward, BadgeIssuer

BASE = "http://school.local:8000"
OB3_CONTEXTS = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]


def _award(**changes: Any) -> BadgeAward:
    fields: dict[str, Any] = dict(
        id="aw_3f2a9c", badge_key="chemistry-bench/steady-hands", name="Steady hands",
        description="Finished the practical with no mistakes.",
        criteria="Complete the titration practical without a single mistake.",
        course_id="c_ab12", course_name="Kimyo 9-A", student_id="s_42", student_name="Dilnoza Karimova",
        awarded_at=time.time() - 60.75,
    )
    fields.update(changes)
    return BadgeAward(**fields)


@pytest.fixture
def issuer(tmp_path: Path) -> BadgeIssuer:
    return BadgeIssuer(tmp_path / "data", name="Tashkent School 110")


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    head, body, _ = token.split(".")
    return decode(head), decode(body)


def _public_jwk(issuer: BadgeIssuer) -> jwk.JWK:
    (key,) = issuer.jwks()["keys"]
    return jwk.JWK(**key)


def _ob3_verifier(issuer: BadgeIssuer) -> OB3Verifier:
    """openbadgeslib trusting exactly the key in our JWKS (converted by jwcrypto, not us)."""
    return OB3Verifier(_public_jwk(issuer).export_to_pem())


def _tampered(token: str, change: dict[str, Any]) -> str:
    head, body, sig = token.split(".")
    payload = {**_segments(token)[1], **change}
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def test_jwcrypto_verifies_the_jws_against_the_published_jwks(issuer: BadgeIssuer) -> None:
    credential = issuer.credential(_award(), BASE)
    token = issuer.sign(credential)
    verified = jws.JWS()
    verified.deserialize(token)
    verified.verify(_public_jwk(issuer), alg="RS256")
    payload = json.loads(verified.payload)
    assert {k: v for k, v in payload.items() if k not in {"iss", "nbf", "jti", "sub"}} == credential
    # the JWT layer too: jwcrypto checks nbf (no exp is expected: badges do not expire)
    checked = jwcrypto_jwt.JWT(jwt=token, key=_public_jwk(issuer), algs=["RS256"], check_claims={"nbf": None})
    assert json.loads(checked.claims)["jti"] == credential["id"]


def test_openbadgeslib_ob3_verifier_accepts_the_badge(issuer: BadgeIssuer) -> None:
    award = _award()
    token = issuer.sign(issuer.credential(award, BASE))
    badge = _ob3_verifier(issuer).verify(token, expected_recipient=f"urn:amaliy:learner:{award.student_id}")
    assert badge.issuer.id == f"{BASE}/api/badges/issuer"
    assert badge.issuer.name == "Tashkent School 110"
    assert badge.achievement.name == "Steady hands"
    assert badge.achievement.criteria_narrative == award.criteria
    assert badge.achievement.achievement_type == "Badge"
    assert badge.issuance_date == datetime.fromtimestamp(int(award.awarded_at), timezone.utc)


def test_jose_header_follows_section_8_2(issuer: BadgeIssuer) -> None:
    header, _ = _segments(issuer.sign(issuer.credential(_award(), BASE)))
    assert header["alg"] == "RS256"
    assert header.get("typ", "JWT") == "JWT"
    assert set(header) <= {"alg", "kid", "jwk", "typ"}  # §8.2: no other JOSE headers
    (published,) = issuer.jwks()["keys"]
    assert header["kid"] == published["kid"] == _public_jwk(issuer).thumbprint_uri()
    assert jwk.JWK(**header["jwk"]).thumbprint() == _public_jwk(issuer).thumbprint()
    for key in (header["jwk"], published):
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # never a private member
    assert published["kty"] == "RSA" and published["alg"] == "RS256" and published["use"] == "sig"
    assert _public_jwk(issuer).get_op_key("verify").key_size == 2048


def test_registered_claims_mirror_the_credential(issuer: BadgeIssuer) -> None:
    award = _award(awarded_at=1_750_000_000.9)
    _, payload = _segments(issuer.sign(issuer.credential(award, BASE)))
    assert payload["iss"] == payload["issuer"]["id"]
    assert payload["jti"] == payload["id"]
    assert payload["sub"] == payload["credentialSubject"]["id"]
    assert payload["nbf"] == 1_750_000_000
    assert datetime.fromisoformat(payload["validFrom"]).timestamp() == payload["nbf"]
    assert "vc" not in payload and "exp" not in payload  # OB 3.0 final: the payload is the credential


def test_credential_shape(issuer: BadgeIssuer) -> None:
    credential = issuer.credential(_award(awarded_at=1_750_000_000.9), BASE)
    assert credential["@context"] == OB3_CONTEXTS
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["id"] == f"{BASE}/api/badges/aw_3f2a9c"
    assert credential["issuer"] == {"id": f"{BASE}/api/badges/issuer", "type": ["Profile"], "name": "Tashkent School 110", "url": BASE}
    assert credential["validFrom"] == "2025-06-15T15:06:40Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", credential["validFrom"])
    assert credential["name"] == "Steady hands"
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"] and subject["id"] == "urn:amaliy:learner:s_42"
    assert subject["identifier"][0]["identityHash"] == "Dilnoza Karimova"
    achievement = subject["achievement"]
    assert achievement["id"] == f"{BASE}/api/badges/achievements/chemistry-bench/steady-hands"
    assert achievement["type"] == ["Achievement"]
    assert achievement["description"] == "Finished the practical with no mistakes."
    assert achievement["criteria"] == {"narrative": "Complete the titration practical without a single mistake."}


def test_badge_keys_are_quoted_into_the_achievement_id(issuer: BadgeIssuer) -> None:
    credential = issuer.credential(_award(badge_key="c_ab12/level 5+"), BASE)
    assert credential["credentialSubject"]["achievement"]["id"] == f"{BASE}/api/badges/achievements/c_ab12/level%205%2B"


def test_issuer_profile_document(issuer: BadgeIssuer) -> None:
    assert issuer.profile(BASE) == {
        "@context": OB3_CONTEXTS, "id": f"{BASE}/api/badges/issuer", "type": ["Profile"],
        "name": "Tashkent School 110", "url": BASE,
    }


def test_a_tampered_payload_fails(issuer: BadgeIssuer) -> None:
    token = issuer.sign(issuer.credential(_award(), BASE))
    forged = _tampered(token, {"name": "Gold medal"})
    with pytest.raises(jws.InvalidJWSSignature):
        verified = jws.JWS()
        verified.deserialize(forged)
        verified.verify(_public_jwk(issuer), alg="RS256")
    with pytest.raises(OB3VerificationError):
        _ob3_verifier(issuer).verify(forged)


def test_a_badge_signed_by_another_node_fails(issuer: BadgeIssuer, tmp_path: Path) -> None:
    other = BadgeIssuer(tmp_path / "elsewhere", name="Tashkent School 110")
    assert other.jwks()["keys"][0]["kid"] != issuer.jwks()["keys"][0]["kid"]
    token = other.sign(other.credential(_award(), BASE))  # same issuer id and name, different key
    with pytest.raises(jws.InvalidJWSSignature):
        verified = jws.JWS()
        verified.deserialize(token)
        verified.verify(_public_jwk(issuer), alg="RS256")
    with pytest.raises(OB3VerificationError):
        _ob3_verifier(issuer).verify(token)


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = BadgeIssuer(data)
    path = data / "issuer.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = BadgeIssuer(data)
    assert again.jwks() == first.jwks()
    token = first.sign(first.credential(_award(), BASE))
    assert _ob3_verifier(again).verify(token).id == f"{BASE}/api/badges/aw_3f2a9c"
