"""How django-axes limits failed sign-ins here (its settings point at these functions).

After ``LOGIN_FAILURE_LIMIT`` failures for one user name, or from one address, within
``LOGIN_FAILURE_WINDOW``, password sign-in is refused, even with the right password, until the
window has passed without another failure. The sign-in page says so (status 429), and every
refusal is an ``auth.locked_out`` audit event (audit/signals.py). An admin lifts a lock early
with ``manage.py axes_reset_username NAME`` or ``manage.py axes_reset_ip ADDRESS``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class SignInLimitBackend(AxesStandaloneBackend):  # type: ignore[misc]  # django-axes is untyped
    """First of the authentication backends: refuses a locked-out sign-in before any password is
    checked. ``authenticate()`` without a request (the test client's ``login()``, a script) comes
    through no sign-in page and is left to the other backends."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        # axes raises PermissionDenied for a locked-out sign-in, else answers None (no user).
        user: AbstractBaseUser | None = super().authenticate(request, username, password, **kwargs)
        return user


def client_ip(request: HttpRequest) -> str:
    """The address a request came from. Behind ``TRUSTED_PROXY_COUNT`` proxies that each append
    to ``X-Forwarded-For``, it is the entry the outermost proxy wrote (counted from the right):
    entries further left come from the client and can be anything."""
    remote: str = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if not hops:
        return remote
    candidate = hops[-count] if len(hops) >= count else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def is_not_a_password_attempt(
    request: HttpRequest, credentials: dict[str, Any] | None = None
) -> bool:
    """Only password guesses count: a single sign-on callback names no user and is neither
    counted nor refused (the identity provider guards its own sign-in)."""
    return not get_client_username(request, credentials)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The sign-in page again, saying why it refused (instead of axes' bare text answer)."""
    username = get_client_username(request, credentials) or ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "locked_out": True,
        "lockout_minutes": max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)),
    }
    return render(request, "registration/login.html", context, status=429)
