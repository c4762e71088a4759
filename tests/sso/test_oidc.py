"""Single sign-on against a fake identity provider: RS256 ID tokens signed by a key made here,
its JWKS, token and userinfo endpoints served through a stand-in for ``requests``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.test import Client
from mozilla_django_oidc import auth as oidc_auth

from audit.models import AuditEvent
from cleanup.models import DeletionCheck
from tests.conftest import rows
from tests.observability.factories import awaiting_check

ISSUER = "https://idp.example.com"
CLIENT_ID = "platform-console"
KID = "idp-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


IDP_KEY = new_key()
ATTACKER_KEY = new_key()


@dataclass
class FakeResponse:
    body: Any
    status_code: int = 200
    url: str = ""
    headers: dict = field(default_factory=lambda: {"content-type": "application/json"})

    def json(self) -> Any:
        return self.body

    @property
    def text(self) -> str:
        return json.dumps(self.body)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise AssertionError(f"{self.url} answered {self.status_code}")


class FakeIdentityProvider:
    """Answers the token, JWKS and userinfo requests mozilla-django-oidc makes."""

    def __init__(self) -> None:
        self.id_token = ""
        self.userinfo: dict[str, Any] = {}
        self.requests: list[str] = []

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key=IDP_KEY,
        audience: str = CLIENT_ID,
        issuer: str = ISSUER,
        lifetime: int = 300,
    ) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KID})

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(IDP_KEY.public_key()))
        return {"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}

    # The two functions of `requests` the library calls.
    def post(self, url: str, data=None, **kwargs) -> FakeResponse:
        self.requests.append(f"POST {url}")
        assert url == f"{ISSUER}/token"
        assert data["client_id"] == CLIENT_ID and data["code"] == "the-code"
        assert data["code_verifier"]  # PKCE is on
        return FakeResponse({"id_token": self.id_token, "access_token": "at-1"}, url=url)

    def get(self, url: str, **kwargs) -> FakeResponse:
        self.requests.append(f"GET {url}")
        if url == f"{ISSUER}/jwks":
            return FakeResponse(self.jwks(), url=url)
        if url == f"{ISSUER}/userinfo":
            assert kwargs["headers"]["Authorization"] == "Bearer at-1"
            return FakeResponse(self.userinfo, url=url)
        raise AssertionError(f"unexpected GET {url}")


@pytest.fixture
def idp(settings, monkeypatch) -> FakeIdentityProvider:
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "client-secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{ISSUER}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{ISSUER}/jwks"
    settings.OIDC_OP_ISSUER = ISSUER
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_USE_PKCE = True
    settings.AUTHENTICATION_BACKENDS = [
        "console.oidc.ConsoleOIDCBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    provider = FakeIdentityProvider()
    monkeypatch.setattr(oidc_auth, "requests", provider)
    return provider


def sign_in(client: Client, idp: FakeIdentityProvider, groups: list[str], **token_options) -> Any:
    """The browser's round trip: the console sends it to the provider, the provider sends it
    back with a code; the ID token carries the nonce the console chose."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith(f"{ISSUER}/authorize?")
    assert query["client_id"] == [CLIENT_ID]
    claims = {
        "sub": "u-123",
        "email": "olivia@example.com",
        "given_name": "Olivia",
        "groups": groups,
        "nonce": query["nonce"][0],
    }
    idp.id_token = idp.sign(claims, **token_options)
    idp.userinfo = {"sub": "u-123", "email": "olivia@example.com"}
    return client.get("/oidc/callback/", {"code": "the-code", "state": query["state"][0]})


def approve(client: Client, check: DeletionCheck) -> int:
    return client.post("/deletions/approve/", {"check": [check.pk]}).status_code


def test_an_operator_by_token_can_approve_and_loses_it_when_the_group_is_removed(db, idp):
    first, second = awaiting_check("sha256:" + "1" * 64), awaiting_check("sha256:" + "2" * 64)
    browser = Client()

    answer = sign_in(browser, idp, ["console-operators", "unrelated-team"])

    assert answer.status_code == 302 and answer["Location"] == "/"
    user = User.objects.get(username="olivia@example.com")
    assert set(user.groups.values_list("name", flat=True)) == {"operator"}
    assert user.first_name == "Olivia"
    assert approve(browser, first) == 302
    first.refresh_from_db()
    assert first.status == DeletionCheck.Status.APPROVED
    assert first.approved_by == "olivia@example.com"

    browser.post("/logout/")
    sign_in(browser, idp, ["console-viewers"])

    user = User.objects.get(username="olivia@example.com")
    assert set(user.groups.values_list("name", flat=True)) == {"viewer"}
    before = rows(DeletionCheck, AuditEvent)
    assert approve(browser, second) == 403
    second.refresh_from_db()
    assert second.status == DeletionCheck.Status.AWAITING_APPROVAL
    assert rows(DeletionCheck, AuditEvent) == before
    synced = AuditEvent.objects.filter(action="user.roles_synced").order_by("id")
    assert [e.details["removed"] for e in synced] == [[], ["operator"]]


def test_a_token_signed_by_another_key_is_refused_and_audited(db, idp):
    browser = Client()

    answer = sign_in(browser, idp, ["console-admins"], key=ATTACKER_KEY)

    assert answer.status_code == 302 and answer["Location"] == "/login/?sso=failed"
    assert not User.objects.filter(username="olivia@example.com").exists()
    assert browser.get("/").status_code == 302  # still signed out
    failure = AuditEvent.objects.get(action="auth.sso_failed")
    assert failure.actor == "sso"
    assert "Signature verification failed" in failure.details["reason"]


def test_a_token_for_another_audience_is_refused(db, idp):
    answer = sign_in(Client(), idp, ["console-admins"], audience="some-other-app")

    assert answer["Location"] == "/login/?sso=failed"
    assert not User.objects.filter(username="olivia@example.com").exists()
    assert "Audience" in AuditEvent.objects.get(action="auth.sso_failed").details["reason"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"issuer": "https://evil.example.com"}, "Invalid issuer"),
        ({"lifetime": -600}, "Signature has expired"),
    ],
)
def test_a_token_from_another_issuer_or_expired_is_refused(db, idp, options, reason):
    answer = sign_in(Client(), idp, ["console-admins"], **options)

    assert answer["Location"] == "/login/?sso=failed"
    assert not User.objects.filter(username="olivia@example.com").exists()
    assert reason in AuditEvent.objects.get(action="auth.sso_failed").details["reason"]


def test_a_provider_refusal_is_audited(db, idp):
    answer = Client().get("/oidc/callback/", {"error": "access_denied", "state": "x"})

    assert answer["Location"] == "/login/?sso=failed"
    assert "access_denied" in AuditEvent.objects.get(action="auth.sso_failed").details["reason"]


def test_local_accounts_keep_working_next_to_sso(db, idp, operator_user):
    browser = Client()
    page = browser.get("/login/")
    assert b"Sign in with SSO" in page.content and b'name="password"' in page.content

    answer = browser.post(
        "/login/", {"username": "oscar", "password": "correct-horse-battery-staple"}
    )

    assert answer.status_code == 302
    assert browser.get("/").status_code == 200


def test_local_login_off_hides_the_form_and_refuses_passwords(db, idp, settings, operator_user):
    settings.LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["console.oidc.ConsoleOIDCBackend"]
    browser = Client()
    page = browser.get("/login/")
    assert b"Sign in with SSO" in page.content and b'name="password"' not in page.content

    browser.post("/login/", {"username": "oscar", "password": "correct-horse-battery-staple"})

    assert browser.get("/").status_code == 302


def test_without_oidc_settings_the_sso_pages_do_not_exist(db, client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert b"Sign in with SSO" not in client.get("/login/").content


def test_a_deactivated_user_loses_a_session_signed_in_through_the_provider(db, idp):
    from django.contrib.auth.models import User

    from console.oidc import ConsoleOIDCBackend

    user = User.objects.create_user(username="sso-user", email="sso@example.com")
    backend = ConsoleOIDCBackend()
    assert backend.get_user(user.pk) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert backend.get_user(user.pk) is None
