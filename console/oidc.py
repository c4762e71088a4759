"""Single sign-on with OpenID Connect (mozilla-django-oidc), on when ``OIDC_RP_CLIENT_ID`` is set.

At every sign-in the user's console roles follow the identity provider: the claim named by
``OIDC_GROUPS_CLAIM`` (default ``groups``) is mapped through ``OIDC_GROUP_MAP`` to the ``viewer``,
``operator`` and ``admin`` groups, and roles the token no longer grants are taken away. Other
groups a user is in are left alone.

The ID token must be signed by the provider's key (JWKS), be for this client (``aud``), not be
expired, and come from ``OIDC_OP_ISSUER`` when that is set; the library itself does not check the
audience, so ``_verify_jws`` does it here. Every refused sign-in is in the audit history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from mozilla_django_oidc import views as oidc_views
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

import audit
from accounts.roles import ROLES

logger = logging.getLogger(__name__)

ACTOR = "sso"
CLOCK_LEEWAY_SECONDS = 60


def claim_values(claims: dict[str, Any], name: str) -> list[str]:
    """A claim as a list of strings (providers send a list, a string, or a space-separated one)."""
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def roles_from_claims(claims: dict[str, Any]) -> set[str]:
    mapping: dict[str, str] = settings.OIDC_GROUP_MAP
    return {
        mapping[group]
        for group in claim_values(claims, settings.OIDC_GROUPS_CLAIM)
        if group in mapping
    }


def sync_roles(user: User, claims: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Make the user's console roles exactly those the claims grant. Returns (added, removed)."""
    wanted = roles_from_claims(claims)
    have = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    added, removed = wanted - have, have - wanted
    with transaction.atomic():
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        if added:
            user.groups.add(*Group.objects.filter(name__in=added))
        if added or removed:
            audit.record(
                ACTOR,
                "user.roles_synced",
                target_type="user",
                target_id=user.pk,
                target_label=user.get_username(),
                details={
                    "added": sorted(added),
                    "removed": sorted(removed),
                    "roles": sorted(wanted),
                },
            )
    return added, removed


def record_failure(request: HttpRequest | None, reason: str, who: str = "") -> None:
    logger.warning("single sign-on refused: %s", reason)
    audit.record(
        ACTOR,
        "auth.sso_failed",
        target_type="user",
        target_id=who,
        target_label=who,
        details={
            "reason": reason[:500],
            "ip": (request.META.get("REMOTE_ADDR", "") if request is not None else ""),
        },
    )


class ConsoleOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]  # mozilla-django-oidc is untyped
    """mozilla-django-oidc's backend with audience/issuer checks, roles from claims, and audit."""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if request is None or not request.GET.get("code") or not request.GET.get("state"):
            return None  # not an OIDC callback: password sign-ins go to ModelBackend
        self._claims: dict[str, Any] = {}
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except (SuspiciousOperation, jwt.PyJWTError, requests.RequestException) as exc:
            record_failure(request, f"{type(exc).__name__}: {exc}", self._who())
            return None
        if user is None:
            record_failure(request, "no user matched or could be created", self._who())
        elif not user.is_active:
            record_failure(request, "the user is deactivated", user.get_username())
        return user

    def get_user(self, user_id: int) -> User | None:
        """The session's user, only while active: a user deactivated in the console or the admin
        loses the sessions signed in through the provider too (the base class does not check)."""
        user: User | None = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def _who(self) -> str:
        return str(self._claims.get("email") or self._claims.get("sub") or "")

    def _verify_jws(self, payload: str | bytes, key: jwt.PyJWK | str | bytes) -> dict[str, Any]:
        """Check signature, algorithm, audience, expiry and (when configured) issuer."""
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(
                f"token algorithm {header.get('alg')!r} is not {self.OIDC_RP_SIGN_ALGO!r}"
            )
        issuer = self.get_settings("OIDC_OP_ISSUER", None)
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=issuer or None,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "aud", "sub"], "verify_iss": bool(issuer)},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims, completed by the userinfo endpoint (groups are often only in
        one of them)."""
        claims = dict(payload)
        self._claims = claims
        claims.update(super().get_userinfo(access_token, id_token, payload))
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("email")) and claims.get("email_verified", True) is not False

    def get_username(self, claims: dict[str, Any]) -> str:
        email: str = claims["email"]
        return email[:150]

    def create_user(self, claims: dict[str, Any]) -> User:
        user: User = self.UserModel.objects.create_user(
            self.get_username(claims), email=claims["email"]
        )
        self._update_profile(user, claims)
        sync_roles(user, claims)
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        self._update_profile(user, claims)
        sync_roles(user, claims)
        return user

    def _update_profile(self, user: User, claims: dict[str, Any]) -> None:
        first, last = claims.get("given_name", ""), claims.get("family_name", "")
        if (first, last) != (user.first_name, user.last_name) and (first or last):
            user.first_name, user.last_name = first[:150], last[:150]
            user.save(update_fields=["first_name", "last_name"])


class CallbackView(oidc_views.OIDCAuthenticationCallbackView):  # type: ignore[misc]  # mozilla-django-oidc is untyped
    """Records the provider's own refusals (``?error=access_denied``...) in the audit history."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.GET.get("error"):
            record_failure(
                request,
                f"provider answered {request.GET['error']}: {request.GET.get('error_description', '')}",
            )
        response: HttpResponse = super().get(request)
        return response


def _only_when_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OIDC pages exist only when OIDC is configured; they are reachable signed out."""

    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("single sign-on is not configured")
        return view(request, *args, **kwargs)

    return wrapper


urlpatterns = [
    path(
        "callback/",
        _only_when_enabled(CallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path(
        "authenticate/",
        _only_when_enabled(oidc_views.OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path("logout/", _only_when_enabled(oidc_views.OIDCLogoutView.as_view()), name="oidc_logout"),
]


def login_options(request: HttpRequest) -> dict[str, Any]:
    """Context processor for the sign-in page."""
    return {"oidc_enabled": settings.OIDC_ENABLED, "local_login": settings.LOCAL_LOGIN}
