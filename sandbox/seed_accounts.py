"""Sandbox data: the three demo accounts, in the sandbox AWS and registered in the console."""

from __future__ import annotations

from accounts import actions
from accounts.models import AwsAccount
from sandbox import aws

ACTOR = "sandbox"


def seed() -> list[AwsAccount]:
    """Create the console's role in each sandbox account and register the accounts that the
    console does not know yet (an existing registration is left as it is)."""
    registered = []
    for account in aws.ACCOUNTS:
        aws.create_console_role(account.account_id)
        existing = AwsAccount.objects.filter(account_id=account.account_id).first()
        registered.append(
            existing
            or actions.do_add_account(
                actor=ACTOR,
                account_id=account.account_id,
                name=account.name,
                environment=account.environment,
                role_arn=account.role_arn,
                regions=[aws.DEMO_REGION],
                is_registry=account.is_registry,
            )
        )
    return registered
