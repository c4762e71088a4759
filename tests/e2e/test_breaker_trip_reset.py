"""A breaker in a real browser: an operator trips and resets it without a page reload; a viewer
has no buttons and a forged POST is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts import actions as account_actions
from audit.models import AuditEvent
from breaker import actions
from breaker.models import Breaker
from tests.breaker.conftest import ACCOUNT, REGION, build_function
from tests.conftest import rows

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


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


def mapping_state(breaker: Breaker) -> str:
    from accounts import aws as accounts_aws

    client = accounts_aws.client(breaker.account, breaker.region, "lambda")
    return client.get_event_source_mapping(UUID=breaker.mapping_uuid)["State"]


def test_an_operator_trips_with_a_reason_and_resets_without_a_page_reload(
    page, login_as, operator_user, breaker
):
    login_as(operator_user)
    page.goto(f"/breakers/{breaker.pk}/")
    state = page.locator("#breaker-panel h1 .state")
    expect(state).to_have_text("closed")
    page.evaluate("window.__marker = 'no reload'")

    page.fill("#trip-reason", "payments API down, stop the orders worker")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Trip").click()

    expect(state).to_have_text("open")
    expect(page.locator("#breaker-panel .mode")).to_have_text("tripped by hand")
    first = page.locator("#timeline li").first
    expect(first).to_contain_text("payments API down, stop the orders worker")
    expect(first).to_contain_text("by hand")
    expect(first).to_contain_text("by oscar")
    assert asked == [
        "Trip orders? This disables the mapping of function orders-worker: messages wait in the "
        "queue until someone resets it. Alarms cannot close it meanwhile."
    ]
    assert mapping_state(breaker) == "Disabled"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset").click()

    expect(state).to_have_text("closed")
    expect(page.locator("#timeline li").first).to_contain_text("reset")
    assert page.evaluate("window.__marker") == "no reload"
    assert mapping_state(breaker) == "Enabled"
    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("closed", "auto")


def test_a_viewer_has_no_buttons_and_a_forged_trip_is_refused(page, login_as, viewer_user, breaker):
    login_as(viewer_user)
    page.goto(f"/breakers/{breaker.pk}/")

    expect(page.locator("#breaker-panel h1 .state")).to_have_text("closed")
    expect(page.get_by_role("button", name="Trip")).to_have_count(0)
    expect(page.get_by_role("button", name="Reset")).to_have_count(0)
    expect(page.get_by_role("button", name="Probe now")).to_have_count(0)

    csrf = next(
        cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken"
    )
    before = rows(Breaker, AuditEvent)
    answer = page.request.post(
        f"/breakers/{breaker.pk}/trip/", form={"reason": "forged"}, headers={"X-CSRFToken": csrf}
    )

    assert answer.status == 403
    assert rows(Breaker, AuditEvent) == before
    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("closed", "auto")
    assert not breaker.transitions.exists()
    assert mapping_state(breaker) == "Enabled"
