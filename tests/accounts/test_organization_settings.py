"""Connecting, editing and disconnecting the organization: the admins' page and the CLI, with the
same validators; everyone else gets 403 and nothing changes."""

from __future__ import annotations

import getpass
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts import organizations
from accounts.models import AwsAccount, Organization, OrganizationMember
from audit.models import AuditEvent
from tests.accounts.organization import MEMBER_ROLE, ORG_ROLE, StackSet, create_organization
from tests.conftest import rows

pytestmark = pytest.mark.django_db
PROD_OU = "ou-ab12-abcdefgh"
SANDBOX_OU = "ou-ab12-sandbox1"
FORM = {
    "role_arn": ORG_ROLE,
    "external_id": "",
    "member_role_name": MEMBER_ROLE,
    "member_external_id": "stackset-external-id",
    "include_ous": "",
    "exclude_ous": SANDBOX_OU,
    "environment": "workload",
    "regions": "eu-west-1",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command("aws_organization", *args, stdout=out)
    return out.getvalue()


def test_an_admin_connects_the_organization_and_one_event_names_them(admin_client):
    response = admin_client.post("/accounts/organization/", FORM)

    assert response.status_code == 302
    organization = Organization.objects.get()
    assert (organization.role_arn, organization.exclude_ous) == (ORG_ROLE, [SANDBOX_OU])
    assert (organization.member_external_id, organization.connected_by) == (
        "stackset-external-id",
        "ada",
    )
    (event,) = AuditEvent.objects.filter(action="organization.connected")
    assert event.actor == "ada" and event.details["member_external_id"] is True  # never the id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("include_ous", "ou-12", "Not an organizational unit id"),
        ("include_ous", "r-ab12 r-ab12", "listed twice"),
        ("exclude_ous", "r-ab12", "Not an organizational unit id (ou-xxxx-yyyyyyyy)"),
        ("include_ous", SANDBOX_OU, "Both included and excluded"),
        ("role_arn", "arn:aws:iam::12:role/x", "is not an IAM role ARN"),
        ("member_role_name", "no spaces allowed", "is not an IAM role name"),
        ("regions", "mars-1", "Unknown AWS region"),
    ],
)
def test_the_form_says_what_is_wrong_and_writes_nothing(admin_client, field, value, message):
    before = rows(Organization, AuditEvent)

    response = admin_client.post("/accounts/organization/", {**FORM, field: value})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert rows(Organization, AuditEvent) == before


def test_an_admin_edits_the_scope_and_the_change_is_audited(admin_client):
    admin_client.post("/accounts/organization/", FORM)

    admin_client.post("/accounts/organization/", {**FORM, "include_ous": PROD_OU})

    assert Organization.objects.get().include_ous == [PROD_OU]
    (event,) = AuditEvent.objects.filter(action="organization.updated")
    assert event.details == {"include_ous": {"from": [], "to": [PROD_OU]}}


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client", "outsider_client"])
def test_only_admins_may_see_connect_edit_or_disconnect_it(request, admin_client, persona):
    admin_client.post("/accounts/organization/", FORM)
    client = request.getfixturevalue(persona)
    before = rows(Organization, AuditEvent, AwsAccount)

    answers = [
        client.get("/accounts/organization/").status_code,
        client.post("/accounts/organization/", {**FORM, "exclude_ous": ""}).status_code,
        client.post("/accounts/organization/disconnect/").status_code,
        client.post("/accounts/organization/sync/").status_code,
    ]

    assert answers == [403, 403, 403, 403]
    assert rows(Organization, AuditEvent, AwsAccount) == before


def test_disconnecting_keeps_the_accounts_it_registered(admin_client, aws):
    stackset = StackSet()
    stackset.install("eu-west-1", "us-east-1")
    moto_org = create_organization({"prod": 2})
    stackset.reached |= set(moto_org.accounts["prod"])
    admin_client.post("/accounts/organization/", {**FORM, "exclude_ous": ""})
    admin_client.post("/accounts/organization/sync/")  # django-q runs it inline in the tests
    assert AwsAccount.objects.enabled().count() == 2

    response = admin_client.post("/accounts/organization/disconnect/", follow=True)

    assert "Its 3 accounts stay registered" in response.content.decode()
    assert not Organization.objects.exists()
    assert AwsAccount.objects.enabled().count() == 2 and OrganizationMember.objects.count() == 3
    (event,) = AuditEvent.objects.filter(action="organization.disconnected")
    assert (event.actor, event.details["accounts_kept"]) == ("ada", 3)


def test_the_accounts_page_shows_each_accounts_origin_and_an_unreadable_organization(
    viewer_client, make_account
):
    make_account("222222222222", "by-hand")
    organization = organizations.do_connect_organization(actor="ada", role_arn=ORG_ROLE)
    from_org = make_account("333333333333", "from-org", enabled=False)
    OrganizationMember.objects.create(
        account=from_org, parent_id=PROD_OU, first_seen_at=organization.connected_at
    )
    Organization.objects.update(
        last_read_ok=False,
        last_read_error="AccessDenied: no",
        last_read_at=organization.connected_at,
    )

    body = viewer_client.get("/accounts/").content.decode()

    assert 'id="account-222222222222"' in body and 'id="account-333333333333"' in body
    row = body[body.index('id="account-333333333333"') :]
    assert "organization" in row[:2000] and PROD_OU in row[:2000]
    assert "waiting for its role" in row[:2000]
    assert "by hand" in body[body.index('id="account-222222222222"') :][:2000]
    assert "The organization could not be read" in body and "AccessDenied: no" in body
    assert "Nothing was added or marked gone" in body
    dashboard = viewer_client.get("/").content.decode()
    assert "The AWS Organization cannot be read: AccessDenied: no" in dashboard


# --- CLI -----------------------------------------------------------------------------------------


def test_connect_by_cli_is_audited_as_the_os_user():
    output = run(
        "connect",
        "--role-arn",
        ORG_ROLE,
        "--member-role-name",
        MEMBER_ROLE,
        "--exclude",
        f"{SANDBOX_OU},{PROD_OU}",
        "--regions",
        "eu-west-1,us-east-1",
    )

    assert "connected" in output
    organization = Organization.objects.get()
    assert organization.exclude_ous == [SANDBOX_OU, PROD_OU]
    assert organization.regions == ["eu-west-1", "us-east-1"]
    event = AuditEvent.objects.get(action="organization.connected")
    assert event.actor == f"cli:{getpass.getuser()}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--include", "ou-12"], "Not an organizational unit id"),
        (["--exclude", "r-ab12"], "Not an organizational unit id (ou-xxxx-yyyyyyyy)"),
        (["--include", PROD_OU, "--exclude", PROD_OU], "Both included and excluded"),
        (["--member-role-name", "a b"], "is not an IAM role name"),
    ],
)
def test_the_cli_refuses_what_the_form_refuses_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match="not connected") as refused:
        run("connect", "--role-arn", ORG_ROLE, *args)

    assert message in str(refused.value)
    assert not Organization.objects.exists() and not AuditEvent.objects.exists()


def test_edit_show_and_disconnect_by_cli():
    run("connect", "--role-arn", ORG_ROLE)

    assert run("edit", "--include", PROD_OU) == "changed: include_ous\n"
    shown = json.loads(run("show", "--json"))
    assert (shown["include"], shown["last_read"]) == ([PROD_OU], "never")
    with pytest.raises(CommandError, match="not saved"):
        run("edit", "--exclude", PROD_OU)
    assert Organization.objects.get().exclude_ous == []

    assert "disconnected" in run("disconnect")
    assert not Organization.objects.exists()
    with pytest.raises(CommandError, match="no organization is connected"):
        run("show")


def test_sync_by_cli_reads_the_organization_now(aws):
    stackset = StackSet()
    stackset.install("eu-west-1", "us-east-1")
    moto_org = create_organization({"prod": 2})
    stackset.reached |= set(moto_org.accounts["prod"])
    run("connect", "--role-arn", ORG_ROLE, "--include", moto_org.units["prod"])

    summary = json.loads(run("sync", "--json"))

    assert (summary["added"], summary["enabled"], summary["gone"]) == (2, 2, 0)
    assert AuditEvent.objects.filter(action="account.added", actor__startswith="cli:").count() == 2
