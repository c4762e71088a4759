"""Sandbox data for accounts from AWS Organizations: an organization whose "workloads" unit holds
three accounts and a nested "retired" unit (excluded), connected to the console; a first pass
registers and enables the three, then one of them is closed and a second pass marks it gone, so
the accounts page shows both origins and an account's whole life in the audit history."""

from __future__ import annotations

from accounts import actions, organizations
from accounts.models import AwsAccount
from sandbox import aws

ACTOR = "sandbox"
WORKLOADS = ["payments", "search", "ledger"]
CLOSED = "ledger"


def seed() -> list[AwsAccount]:
    root = aws.ensure_organization()
    workloads = aws.ensure_unit(root, "workloads")
    retired = aws.ensure_unit(workloads, "retired")
    ids = {name: aws.ensure_member_account(root, workloads, name) for name in WORKLOADS}
    aws.ensure_member_account(root, retired, "old-batch")
    if organizations.get_organization() is None:
        organizations.do_connect_organization(
            actor=ACTOR,
            role_arn=f"arn:aws:iam::{aws.CONSOLE_ACCOUNT_ID}:role/{aws.ORGANIZATIONS_ROLE_NAME}",
            member_role_name=aws.ROLE_NAME,
            include_ous=[workloads],
            exclude_ous=[retired],
            environment="workload",
            regions=[aws.DEMO_REGION],
        )
    organizations.do_sync_organization(actor=ACTOR)
    for account in AwsAccount.objects.filter(account_id__in=list(ids.values()), enabled=True):
        # Every enabled region is the rule; the demo's moto answers 38, so the organization's
        # accounts are narrowed to the demo region to keep the worker's checks quick.
        actions.do_update_account(account, actor=ACTOR, usage_regions=[aws.DEMO_REGION])
    if AwsAccount.objects.filter(account_id=ids[CLOSED], membership__state="active").exists():
        aws.close_member_account(ids[CLOSED])
        organizations.do_sync_organization(actor=ACTOR)
    return list(AwsAccount.objects.filter(account_id__in=list(ids.values())))
