"""Keyboard only: an operator reaches the trip form with Tab, trips with Enter, confirms, and
after the panel is redrawn the focus is still in the panel (never dropped to <body>); then the
same for the reset. The page also draws its state timeline with a text alternative."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts import actions as account_actions
from breaker import actions
from breaker.models import Breaker
from tests.breaker.conftest import ACCOUNT, REGION, build_function

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FOCUSED = (
    "document.activeElement ? document.activeElement.id || document.activeElement.tagName : ''"
)


@pytest.fixture
def breaker(aws) -> Breaker:
    account = account_actions.do_add_account(
        actor="fixture",
        account_id=ACCOUNT,
        name="production",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/platform-console",
        regions=[REGION],
    )
    created = build_function(account)
    return actions.do_add_breaker(
        actor="fixture",
        name="orders",
        account=account,
        region=REGION,
        function_name=created.function_name,
        alarms=[created.alarm_arn],
    )


def tab_to(page: Page, element_id: str, limit: int = 80) -> int:
    """Press Tab until the element with ``element_id`` has the focus; returns the presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED) == element_id:
            return presses
    raise AssertionError(f"#{element_id} not reached with {limit} presses of Tab")


def test_an_operator_trips_and_resets_with_the_keyboard_and_keeps_the_focus(
    page, login_as, operator_user, breaker
):
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    login_as(operator_user)
    page.goto(f"/breakers/{breaker.pk}/")
    state = page.locator("#breaker-panel h1 .state")
    expect(state).to_have_text("closed")

    tab_to(page, "trip-reason")
    page.keyboard.type("queue poisoned by a bad deploy")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "trip-button"
    page.keyboard.press("Enter")

    expect(state).to_have_text("open")
    assert len(asked) == 1 and "disables the mapping of function orders-worker" in asked[0]
    # The Trip button is gone from the redrawn panel: the focus moved to the panel itself.
    # htmx moves the focus once the swap has settled: wait for it (a locator, not an eval: CSP)
    expect(page.locator("#breaker-panel:focus, #breaker-panel :focus")).to_have_count(1)
    assert page.evaluate(FOCUSED) == "breaker-panel"

    tab_to(page, "reset-button")
    page.keyboard.press("Enter")

    expect(state).to_have_text("closed")
    assert len(asked) == 2 and "enables the mapping of function orders-worker" in asked[1]
    # htmx moves the focus once the swap has settled: wait for it (a locator, not an eval: CSP)
    expect(page.locator("#breaker-panel:focus, #breaker-panel :focus")).to_have_count(1)
    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("closed", "auto")
    assert breaker.transitions.first().actor == "oscar"


def test_the_timeline_is_a_picture_with_words_and_switches_period_in_place(
    page, login_as, viewer_user, breaker
):
    actions.do_trip(breaker, actor="oscar", reason="maintenance")
    login_as(viewer_user)
    page.goto(f"/breakers/{breaker.pk}/")
    page.evaluate("window.__marker = 'no reload'")

    chart = page.get_by_role("img", name="States of orders")
    expect(chart).to_be_visible()
    expect(page.locator("svg.state-timeline rect.band-open")).to_have_count(1)
    expect(page.locator("svg.state-timeline .mark-manual")).to_have_count(1)
    page.get_by_text("The timeline as a table").click()
    expect(page.locator(".chart-text table").first).to_contain_text("open")

    page.get_by_role("link", name="last 7 days").click()

    expect(page.locator("#breaker-panel h2", has_text="last 7 days")).to_be_visible()
    assert page.evaluate("window.__marker") == "no reload"
    assert "window=7d" in page.url
