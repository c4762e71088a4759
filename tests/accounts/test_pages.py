"""The accounts pages: who may do what, and one audit event per change, naming the actor."""

import pytest
from django.test import Client

from accounts.models import AwsAccount
from audit.models import AuditEvent
from tests.conftest import rows

pytestmark = pytest.mark.django_db
NEW_ACCOUNT = {
    "account_id": "222222222222",
    "name": "production",
    "environment": "prod",
    "role_arn": "arn:aws:iam::222222222222:role/platform-console",
    "external_id": "",
    "regions": "eu-west-1, us-east-1",
}


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get("/accounts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_user_without_a_role_gets_403(outsider_client, make_account):
    make_account("222222222222", "production")

    response = outsider_client.get("/accounts/")

    assert response.status_code == 403
    assert "222222222222" not in response.content.decode()


def test_an_admin_adds_an_account_and_one_event_names_them(admin_client):
    response = admin_client.post("/accounts/add/", NEW_ACCOUNT)

    assert response.status_code == 302
    account = AwsAccount.objects.get()
    assert account.regions == ["eu-west-1", "us-east-1"]
    event = AuditEvent.objects.get(action="account.added")
    assert (event.actor, event.target_id) == ("ada", "222222222222")


def test_the_form_shows_what_is_wrong_and_writes_nothing(admin_client):
    response = admin_client.post(
        "/accounts/add/", {**NEW_ACCOUNT, "regions": "eu-west-1, atlantis-1"}
    )

    assert response.status_code == 200
    assert "Unknown AWS region(s): atlantis-1" in response.content.decode()
    assert not AwsAccount.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="account.").exists()


def test_a_duplicate_id_is_refused_in_the_form(admin_client, make_account):
    make_account("222222222222", "production")
    response = admin_client.post("/accounts/add/", {**NEW_ACCOUNT, "name": "again"})
    assert response.status_code == 200
    assert AwsAccount.objects.get().name == "production"


def test_a_viewer_sees_no_add_button_and_a_post_gets_403(viewer_client):
    page = viewer_client.get("/accounts/").content.decode()
    assert "Add account" not in page

    response = viewer_client.post("/accounts/add/", NEW_ACCOUNT)

    assert response.status_code == 403
    assert "Nothing was changed" in response.content.decode()
    assert not AwsAccount.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="account.").exists()


def test_an_operator_may_not_edit_or_disable(operator_client, make_account):
    make_account("222222222222", "production")
    before = rows(AwsAccount, AuditEvent)

    assert operator_client.post("/accounts/222222222222/disable/").status_code == 403
    assert (
        operator_client.post(
            "/accounts/222222222222/edit/", {**NEW_ACCOUNT, "name": "x"}
        ).status_code
        == 403
    )
    assert AwsAccount.objects.get().enabled is True
    assert rows(AwsAccount, AuditEvent) == before


def test_editing_records_what_changed(admin_client, make_account):
    make_account("222222222222", "production")
    form = {**NEW_ACCOUNT, "name": "prod-eu", "regions": "eu-west-1", "enabled": "on"}
    form["usage_regions"] = "eu-west-1"  # as the fixture narrowed it
    del form["account_id"]

    admin_client.post("/accounts/222222222222/edit/", form)

    event = AuditEvent.objects.get(action="account.updated")
    assert event.details == {"name": {"from": "production", "to": "prod-eu"}}
    assert AwsAccount.objects.get().name == "prod-eu"


def test_disabling_writes_exactly_one_event(admin_client, make_account):
    make_account("222222222222", "production")

    response = admin_client.post("/accounts/222222222222/disable/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert 'id="account-222222222222"' in response.content.decode()
    assert AwsAccount.objects.get().enabled is False
    assert AuditEvent.objects.filter(action="account.disabled", actor="ada").count() == 1


def test_verify_with_htmx_answers_the_updated_row(aws, operator_client, make_account):
    make_account("222222222222", "production")

    response = operator_client.post("/accounts/222222222222/verify/", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.strip().startswith('<tr id="account-222222222222"')
    assert "verified" in body
    assert AuditEvent.objects.filter(action="account.verified", actor="oscar").count() == 1


def test_verify_without_htmx_redirects_with_a_message(aws, operator_client, make_account):
    make_account("222222222222", "production", role_arn="")
    response = operator_client.post("/accounts/222222222222/verify/", follow=True)
    assert "failed verification" in response.content.decode()
    assert AwsAccount.objects.get().last_verification_ok is False


def test_a_viewer_cannot_verify(aws, viewer_client, make_account):
    make_account("222222222222", "production")
    before = rows(AwsAccount, AuditEvent)

    assert viewer_client.post("/accounts/222222222222/verify/").status_code == 403

    assert AwsAccount.objects.get().last_verified_at is None
    assert rows(AwsAccount, AuditEvent) == before
