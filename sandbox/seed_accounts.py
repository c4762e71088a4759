"""Sandbox data: the three demo accounts, in the sandbox AWS and registered in the console."""

from __future__ import annotations

from accounts import actions
from accounts.models import AwsAccount
from sandbox import aws

ACTOR = "sandbox"


def seed() -> list[AwsAccount]:
    """Create the console's role in each sandbox account, register the accounts that the
    console does not know yet (an existing registration is left as it is), and verify each, so
    a newcomer's dashboard starts green."""
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
                # Production and the registry look for images in use in every region enabled in
                # them; development is narrowed, so the demo shows both on the accounts page.
                usage_regions=[] if account.environment == "prod" else [aws.DEMO_REGION],
                is_registry=account.is_registry,
            )
        )
    for account in registered:
        actions.do_verify_account(account, actor=ACTOR)
    return registered
