"""Accounts in a real browser: the console against the sandbox's three accounts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import AwsAccount
from audit.models import AuditEvent
from sandbox import seed_accounts

# The live server needs committed rows; the roles come from a data migration, so the database
# content of the migrations is restored for every test instead of being flushed away.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SANDBOX_IDS = ["111111111111", "222222222222", "333333333333"]


def test_an_admin_sees_the_sandbox_accounts_and_verifies_one_without_a_page_reload(
    aws, page, login_as, admin_user
):
    seed_accounts.seed()  # verifies every account: start this one from "never" again
    AwsAccount.objects.filter(account_id__in=SANDBOX_IDS[1:]).update(
        last_verified_at=None, last_verification_ok=None
    )
    login_as(admin_user)

    page.goto("/accounts/")
    for account_id in SANDBOX_IDS:
        expect(page.locator(f"#account-{account_id}")).to_contain_text(account_id)
    production = page.locator("#account-222222222222")
    expect(production.locator(".verification")).to_contain_text("never")
    page.evaluate("window.__marker = 'no reload'")

    production.get_by_role("button", name="Verify").click()

    expect(production.locator(".verification .badge")).to_have_text("verified")
    assert page.evaluate("window.__marker") == "no reload"
    assert AwsAccount.objects.get(account_id="222222222222").last_verification_ok is True
    expect(page.locator("#account-333333333333 .verification")).to_contain_text("never")


def test_a_viewer_sees_no_add_button_and_a_post_to_add_is_refused(aws, page, login_as, viewer_user):
    seed_accounts.seed()
    login_as(viewer_user)

    page.goto("/accounts/")
    expect(page.locator("#account-111111111111")).to_contain_text("shared")
    expect(page.get_by_role("link", name="Add account")).to_have_count(0)
    expect(page.get_by_role("button", name="Verify")).to_have_count(0)

    csrf = next(
        cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken"
    )
    answer = page.request.post(
        "/accounts/add/",
        form={
            "account_id": "444444444444",
            "name": "uat",
            "environment": "uat",
            "regions": "eu-west-1",
        },
        headers={"X-CSRFToken": csrf},
    )

    assert answer.status == 403
    assert not AwsAccount.objects.filter(account_id="444444444444").exists()
    assert not AuditEvent.objects.filter(account_id="444444444444").exists()
