"""The console on a phone and from the keyboard: the navigation folds into a menu, the skip link
leads to the content, tables scroll inside their own box, and focus survives an htmx swap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from scenarios import pages as data
from tests.conftest import make_user
from tests.e2e.test_accessibility import WIDTHS, signed_in_tab

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def admin(transactional_db):
    return make_user("phone-ada", "admin")


def test_the_navigation_folds_into_a_menu_on_a_phone(browser, live_server, admin):
    context, page, csp = signed_in_tab(browser, live_server, admin, WIDTHS["phone"])
    try:
        page.goto("/")
        menu = page.get_by_role("button", name="Menu")
        audit_link = page.locator("nav[aria-label=Sections]").get_by_role("link", name="Audit")
        expect(menu).to_be_visible()
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(audit_link).to_be_hidden()

        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(audit_link).to_be_visible()
        box = audit_link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390  # not in a sideways strip

        page.keyboard.press("Escape")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(menu).to_be_focused()
        expect(audit_link).to_be_hidden()

        menu.click()
        audit_link.click()
        page.wait_for_url("**/audit/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
    assert csp == []


def test_on_a_desktop_the_navigation_shows_without_a_menu(browser, live_server, admin):
    context, page, _ = signed_in_tab(browser, live_server, admin, WIDTHS["desktop"])
    try:
        page.goto("/")
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        nav = page.locator("nav[aria-label=Sections]")
        for label in ("Repositories", "Deletions", "Breakers", "Inbox", "Audit", "Users"):
            expect(nav.get_by_role("link", name=label)).to_be_visible()
    finally:
        context.close()


def test_the_first_tab_reaches_the_skip_link_and_it_leads_to_the_content(
    browser, live_server, admin
):
    context, page, _ = signed_in_tab(browser, live_server, admin, WIDTHS["desktop"])
    try:
        page.goto("/audit/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to the content")
        expect(skip).to_be_focused()
        expect(skip).to_be_visible()
        outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
        assert outline != "none"  # a visible focus style
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        page.keyboard.press("Tab")  # the next stop is inside the content, not the navigation
        assert page.evaluate("document.activeElement.closest('main') !== null")
    finally:
        context.close()


def test_focus_on_the_dark_navigation_is_visible(browser, live_server, admin):
    context, page, _ = signed_in_tab(browser, live_server, admin, WIDTHS["desktop"])
    try:
        page.goto("/")
        link = page.locator("nav[aria-label=Sections]").get_by_role("link", name="Audit")
        link.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus by keyboard, so :focus-visible applies
        expect(link).to_be_focused()
        style = link.evaluate(
            "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineColor]"
        )
        assert style[0] != "none"
        assert style[1] == "rgb(255, 210, 94)"  # the light outline on the dark bar
    finally:
        context.close()


def test_focus_stays_on_the_control_after_an_htmx_swap(browser, live_server, admin):
    data.build(data.Scale(3, 6, 3, 2, 4, 2, 130, 4), NOW)
    context, page, csp = signed_in_tab(browser, live_server, admin, WIDTHS["desktop"])
    try:
        page.goto("/audit/")
        page.evaluate("window.__marker = 'no reload'")
        older = page.locator("#pager-older")
        older.focus()
        first_row = page.locator("#results tbody tr").first.inner_text()
        page.keyboard.press("Enter")  # the link is inside #results, which htmx replaces
        expect(page.locator("#results tbody tr").first).not_to_have_text(first_row)
        assert page.evaluate("window.__marker") == "no reload"
        expect(page.locator("#pager-older")).to_be_focused()  # the new link with the same id

        page.locator("#pager-older").press("Enter")  # the last page has no "Older" link
        expect(page.locator("#pager-older")).to_have_count(0)
        expect(page.locator("#results")).to_be_focused()  # the region that was swapped
    finally:
        context.close()
    assert csp == []


def test_a_wide_table_scrolls_inside_its_box_on_a_phone(browser, live_server, admin):
    data.build(data.Scale.small(), NOW)
    context, page, _ = signed_in_tab(browser, live_server, admin, WIDTHS["phone"])
    try:
        page.goto("/audit/")
        box = page.locator("#results .table-scroll")
        sizes = box.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert sizes[0] > sizes[1]  # the table is wider than the screen...
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # ...the page is not
    finally:
        context.close()
