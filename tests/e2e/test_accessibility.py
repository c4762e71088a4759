"""axe-core on every page of the console, at a desktop and a phone width, as an admin and as a
viewer: zero violations of any impact. The pages hold rows of every kind (scenarios/pages.py),
so tables, badges and charts are checked with content in them.

axe-core comes vendored inside axe-playwright-python (no network). ``PAGES`` names every page of
the URL configuration; ``test_every_page_of_the_url_conf_is_checked`` fails when a page is added
without being listed here (or in ``NOT_PAGES`` when it is not a page: a POST action, an API).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from scenarios import pages as data
from tests.conftest import make_user
from tests.e2e.conftest import watched_tab

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}

# URL name -> the address to open, from the rows built. ``None`` for the role-free pages.
Address = Callable[[data.Built], str]
PAGES: dict[str, Address] = {
    "dashboard": lambda b: "/",
    "accounts:list": lambda b: "/accounts/",
    "accounts:add": lambda b: "/accounts/add/",
    "accounts:organization": lambda b: "/accounts/organization/",
    "accounts:edit": lambda b: f"/accounts/{b.accounts[1].account_id}/edit/",
    "users:list": lambda b: "/users/",
    "users:invite": lambda b: "/users/invite/",
    "audit:list": lambda b: "/audit/",
    "webhooks:inbox": lambda b: "/inbox/",
    "webhooks:event": lambda b: f"/inbox/{b.events[7].pk}/",  # a failed event
    "breaker:list": lambda b: "/breakers/",
    "breaker:detail": lambda b: f"/breakers/{b.breakers[2].pk}/",  # an open breaker
    "breaker:add": lambda b: "/breakers/add/",
    "breaker:edit": lambda b: f"/breakers/{b.breakers[0].pk}/edit/",
    "cleanup:repositories": lambda b: "/repositories/",
    "cleanup:repository": lambda b: f"/repositories/{b.repositories[0].pk}/",
    "cleanup:repository-policy": lambda b: f"/repositories/{b.repositories[0].pk}/policy/",
    "cleanup:deletions": lambda b: "/deletions/",
    "cleanup:check": lambda b: f"/checks/{b.checks[0].pk}/",
    "cleanup:registry-settings": lambda b: f"/repositories/registry/{b.accounts[0].account_id}/",
    "notify:channels": lambda b: "/notifications/",
    "notify:channel-add": lambda b: "/notifications/add/",
    "notify:channel": lambda b: f"/notifications/{channel_of(b)}/",
    "notify:channel-edit": lambda b: f"/notifications/{channel_of(b)}/edit/",
}
# Further addresses of listed pages (tabs, states) worth their own look.
EXTRA = {
    "cleanup:deletions": [
        lambda b: "/deletions/?status=deleted",
        lambda b: "/deletions/?status=failed",
        lambda b: "/deletions/?status=rejected",
    ],
    "audit:list": [lambda b: "/audit/?account=12&actor=oscar"],  # an invalid filter shown
    "cleanup:check": [lambda b: f"/checks/{b.checks[5].pk}/"],
}
NOT_PAGES = {
    "favicon", "healthz", "healthz-worker", "metrics", "login", "logout",
    "webhooks:eventbridge", "webhooks:sns", "webhooks:reprocess",
    "audit:export",
    "accounts:disable", "accounts:verify",
    "accounts:organization-disconnect", "accounts:organization-sync",
    "users:role", "users:deactivate", "users:reactivate",
    "breaker:trip", "breaker:reset", "breaker:probe", "breaker:manage",
    "cleanup:repository-opt-in", "cleanup:image-protect", "cleanup:image-unprotect",
    "cleanup:image-check", "cleanup:checks-approve", "cleanup:checks-reject",
    "cleanup:checks-protect", "cleanup:deletions-watch",
    "cleanup:image-restore", "cleanup:image-restore-state",
    "notify:channel-delete", "notify:channel-test",
    "oidc_authentication_callback", "oidc_authentication_init", "oidc_logout",
}  # fmt: skip
SKIPPED_NAMESPACES = {"admin", "oidc", "sandbox"}  # Django's admin; sign-on callbacks; the demo's


def channel_of(built: data.Built) -> int:
    """A notification channel to show (the data set has none: one is added here)."""
    from notify import actions
    from notify.models import Channel

    existing = Channel.objects.order_by("pk").first()
    if existing:
        return existing.pk
    return actions.do_save_channel(
        None,
        actor="fixture",
        name="platform team",
        url="json://localhost:9/",
        events=list(actions.EVENT_TYPES),
        all_accounts=True,
        accounts=[],
        enabled=True,
    ).pk


def url_names(patterns=None, namespace: str = "") -> list[str]:
    names = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace in SKIPPED_NAMESPACES or pattern.app_name in SKIPPED_NAMESPACES:
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names += url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.append(namespace + pattern.name)
    return names


def test_every_page_of_the_url_conf_is_checked():
    unlisted = sorted(set(url_names()) - set(PAGES) - NOT_PAGES)
    assert unlisted == [], f"add these to PAGES (or NOT_PAGES) of {__name__}: {unlisted}"


@pytest.fixture
def built(transactional_db):
    return data.build(data.Scale.small(), NOW)


def signed_in_tab(browser, live_server, user, viewport):
    context, page, csp = watched_tab(browser, live_server.url)
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    if user is not None:
        client = Client()
        client.force_login(user)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
    return context, page, csp


def addresses_for(role: str, built: data.Built) -> list[tuple[str, str, int]]:
    """(name, address, expected status) of every page, as ``role`` sees it: a page the role may
    not open is the console's 403 page (checked too)."""
    user = make_user(f"probe-{role}", role)
    client = Client()
    client.force_login(user)
    found = []
    for name, address in PAGES.items():
        for make in [address, *EXTRA.get(name, [])]:
            url = make(built)
            status = client.get(url).status_code
            assert status in (200, 403), f"{url} answered {status} to the {role}"
            found.append((name, url, status))
    found.append(("404", "/no-such-page/", 404))
    user.delete()
    return found


def describe(violations: list[dict]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node.get('failureSummary', '')[:160]}"
        for v in violations
        for node in v["nodes"]
    ]


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_axe_finds_nothing_on_any_page(browser, live_server, built, role, width):
    user = make_user(f"axe-{role}", role)
    pages = addresses_for(role, built)
    if role == "viewer":
        assert any(status == 403 for _, _, status in pages), "no 403 page was checked"
    axe = Axe()
    context, page, csp = signed_in_tab(browser, live_server, user, WIDTHS[width])
    found: dict[str, list[str]] = {}
    try:
        for _name, url, status in pages:
            response = page.goto(url)
            assert response is not None and response.status == status, url
            page.wait_for_load_state("load")
            result = axe.run(page)
            if result.violations_count:
                found[url] = describe(result.response["violations"])
    finally:
        context.close()
    report = "\n".join(f"{url}\n  " + "\n  ".join(lines) for url, lines in found.items())
    assert found == {}, f"axe violations as {role} at {width}:\n{report}"
    assert csp == []


@pytest.mark.parametrize("width", list(WIDTHS))
def test_axe_finds_nothing_on_the_sign_in_page(browser, live_server, width):
    context, page, _csp = signed_in_tab(browser, live_server, None, WIDTHS[width])
    try:
        page.goto("/login/")
        result = Axe().run(page)
    finally:
        context.close()
    assert describe(result.response["violations"]) == []


def test_no_page_is_wider_than_a_phone(browser, live_server, built):
    user = make_user("phone-admin", "admin")
    pages = addresses_for("admin", built)
    context, page, _ = signed_in_tab(browser, live_server, user, WIDTHS["phone"])
    wide = {}
    try:
        for _, url, _status in pages:
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                culprits = page.evaluate(
                    """() => [...document.querySelectorAll('main *, header *')]
                        .filter(e => e.getBoundingClientRect().right > 391)
                        .filter(e => !e.closest('.table-scroll, table.grid'))
                        .slice(0, 3).map(e => e.tagName + '.' + e.className + '#' + e.id)"""
                )
                wide[url] = (width, culprits)
    finally:
        context.close()
    assert wide == {}, f"pages wider than 390 px: {wide}"
