"""An admin adds a breaker by choosing an account: the functions with SQS mappings and the
alarms appear (htmx), nobody types a UUID."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts import actions as account_actions
from breaker.models import Breaker
from tests.breaker.conftest import ACCOUNT, REGION, build_function

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_admin_adds_a_breaker_from_the_discovered_mapping_and_alarm(
    aws, page, login_as, admin_user
):
    account = account_actions.do_add_account(
        actor="fixture",
        account_id=ACCOUNT,
        name="production",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/platform-console",
        regions=[REGION],
    )
    created = build_function(account)
    login_as(admin_user)
    page.goto("/breakers/add/")
    page.evaluate("window.__marker = 'no reload'")

    page.select_option("#id_account", label=str(account))

    expect(page.locator("#id_mapping")).to_contain_text("orders-worker ← orders-worker-queue")
    assert page.evaluate("window.__marker") == "no reload"
    page.fill("#id_name", "orders")
    page.get_by_label("orders-worker-errors (OK)").check()
    page.get_by_role("button", name="Add breaker").click()

    expect(page.locator("#breaker-panel h1")).to_contain_text("orders")
    breaker = Breaker.objects.get()
    assert (breaker.mapping_uuid, breaker.alarms) == (
        created.mapping_uuid,
        [created.alarm_arn],
    )
