"""No address and no form value makes a signed-in page answer 500.

Every URL pattern of the console is walked with hostile values in each of its parameters (a NUL,
a number too large for any column, an over-long string, other scripts' digits), then asked with
GET (with hostile query strings) and POST (with hostile form values in every field name the forms
use), as a superuser who may open everything. AWS is moto, in-process."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import PASSWORD

HOSTILE = ["%00", "9" * 30, "x" * 3000, "-1", "%D9%A3", "%F0%9F%92%A5"]
HOSTILE_FORM = {
    name: value
    for name in [
        "reason",
        "name",
        "account_id",
        "role_arn",
        "external_id",
        "regions",
        "usage_regions",
        "environment",
        "grace_hours",
        "keep_newest",
        "keep_tag_pattern",
        "require_approval",
        "opted_in",
        "next",
        "check",
        "status",
        "alarms",
        "successes_to_close",
        "probe_interval_seconds",
        "backoff_seconds",
        "backoff_cap_seconds",
        "account",
        "region",
        "mapping",
        "managed",
        "role",
        "username",
        "email",
        "config_aggregator_name",
        "config_aggregator_region",
    ]
    for value in ["99999999999999999999\x00" + "é" * 3000]
}
QUERY = "?page=99999999999999999999&status=%00&action=%00&actor=%00&account=%00&since=9999-99-99"
# healthz/worker answers 503 by design when no worker runs (there is none in this test).
SKIPPED_PREFIXES = ("admin/", "webhooks/", "oidc/", "sandbox/", "logout/", "metrics", "healthz/")


def patterns(resolver=None, prefix: str = "") -> list[str]:
    """Every route as a string with its parameters named, e.g. ``accounts/<account:account_id>/edit/``."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += patterns(entry, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


def filled(route: str, value: str) -> str:
    return "/" + re.sub(r"<[^>]+>", value, route).lstrip("^").rstrip("$")


@pytest.fixture
def superuser_client(db) -> Client:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(raise_request_exception=False)
    client.login(username="root", password=PASSWORD)
    return client


ROUTES = [route for route in patterns() if not route.startswith(SKIPPED_PREFIXES)]


@pytest.mark.parametrize("route", ROUTES)
def test_no_hostile_address_or_form_value_answers_500(superuser_client, aws, route):
    values = HOSTILE if "<" in route else [""]
    for value in values:
        path = filled(route, value)
        got = superuser_client.get(path + QUERY)
        assert got.status_code < 500, (path, got.status_code)
        posted = superuser_client.post(path, HOSTILE_FORM)
        assert posted.status_code < 500, (path, posted.status_code)
        htmx = superuser_client.post(path, HOSTILE_FORM, headers={"HX-Request": "true"})
        assert htmx.status_code < 500, (path, htmx.status_code)


def test_the_walk_covers_the_consoles_pages():
    assert {"accounts/<account:account_id>/edit/", "checks/<id:pk>/", "deletions/"} <= set(ROUTES)
    assert len(ROUTES) > 25
