import re
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

ROW_ID = re.compile(r"[0-9]{1,18}", re.ASCII)  # a primary key as a form sends it


class HtmxRequest(HttpRequest):
    """Typing shim: the middleware adds ``htmx``; logged-in views always have a user."""

    htmx: HtmxDetails
    user: User


def htmx_partial(request: HttpRequest, target: str | None = None) -> bool:
    """Whether to answer with a fragment: an htmx request (not a boosted page load) and, when
    ``target`` is given, one aimed at that element. The one place the views decide it."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.boosted:
        return False
    return target is None or htmx.target == target


def actor_of(request: HttpRequest) -> str:
    return request.user.get_username()


def redirect_back(request: HttpRequest, fallback: str, **kwargs: Any) -> HttpResponseRedirect:
    """Back to the form's ``next`` when it is a page of this console, else to ``fallback`` (a
    URL name): never an open redirect to another host."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(resolve_url(fallback, **kwargs))


def row_ids(values: list[str]) -> list[int]:
    """The primary keys among form values; anything else (signs, non-ASCII digits, numbers too
    large for the column) is left out rather than reaching the database."""
    return [int(value) for value in values if ROW_ID.fullmatch(value)]
