"""What the organization's settings actions and its pass share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

from accounts.forms import OrganizationForm
from accounts.models import AwsAccount, Organization, OrganizationMember

WORKER = "worker"
INTERVAL_MINUTES = 15
# Above the task's timeout (django-q's 240 s), below the interval: a pass killed mid-way leaves
# a lease that has lapsed by the next one.
LEASE = timedelta(minutes=5)
VERIFY_RETRY_BASE = timedelta(minutes=INTERVAL_MINUTES)
VERIFY_RETRY_CAP = timedelta(hours=6)
# About a minute of verifications against real AWS (0.2-0.3 s each), well inside the timeout.
VERIFY_PER_PASS = 250
ACTIVE = "ACTIVE"
CLOSED_STATES = {"SUSPENDED", "PENDING_CLOSURE", "CLOSED"}
# What the admin's form, the CLI and an edit may set (the form's fields).
SETTINGS_FIELDS = list(OrganizationForm.Meta.fields)
State = OrganizationMember.State


def get_organization() -> Organization | None:
    return Organization.objects.filter(pk=Organization.ONE).first()


class Target(TypedDict):
    target_type: str
    target_id: str
    target_label: str
    account_id: str


def org_target(organization: Organization) -> Target:
    return {
        "target_type": "organization",
        "target_id": str(organization.pk),
        "target_label": organization.role_arn,
        "account_id": organization.management_account_id,
    }


def account_target(account: AwsAccount) -> Target:
    return {
        "target_type": "aws_account",
        "target_id": account.account_id,
        "target_label": account.name,
        "account_id": account.account_id,
    }


def settings_of(organization: Organization) -> dict[str, Any]:
    """The settings as the audit history shows them (external ids only as set or not)."""
    values = {name: getattr(organization, name) for name in SETTINGS_FIELDS}
    values["external_id"] = bool(values["external_id"])
    values["member_external_id"] = bool(values["member_external_id"])
    return values


def enqueue_sync() -> None:
    from django_q.tasks import async_task

    async_task("accounts.tasks.sync_organization", group="accounts", timeout=240)
