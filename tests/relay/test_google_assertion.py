"""The Vertex AI service-account assertion: an RS256 JWT that verifies with the account's public key."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relay.errors import LocalError
from relay.upstream import google_auth

pytestmark = [pytest.mark.relay]


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _account(pem: str, kid: str = "kid-1") -> google_auth.ServiceAccount:
    return google_auth.ServiceAccount(
        project_id="p",
        client_email="sa@p.iam.gserviceaccount.com",
        private_key=pem,
        private_key_id=kid,
        token_uri="https://oauth2.example/token",
    )


def test_the_assertion_verifies_with_the_public_key_and_names_the_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = google_auth.assertion(_account(_pem(key)), now=1_700_000_000)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.example/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": "sa@p.iam.gserviceaccount.com",
        "scope": google_auth.SCOPE,
        "aud": "https://oauth2.example/token",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }
    assert "kid" not in jwt.get_unverified_header(google_auth.assertion(_account(_pem(key), kid=""), now=1))


@pytest.mark.parametrize("pem", [_pem(ec.generate_private_key(ec.SECP256R1())), "not a key", ""])
def test_a_key_that_is_not_pem_rsa_is_a_channel_key_error(pem: str) -> None:
    with pytest.raises(LocalError) as caught:
        google_auth.assertion(_account(pem))
    assert caught.value.code == "invalid_channel_key"
