"""Every change to the accounts registry: validated, in one transaction, with its audit event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db import transaction

import audit
from accounts import aws
from accounts.forms import AccountEditForm
from accounts.models import AwsAccount
from console import clock

# What an edit may change: the edit form's fields (the CLI and the pages share this list).
EDITABLE_FIELDS = list(AccountEditForm.Meta.fields)


class _Target(TypedDict):
    target_type: str
    target_id: str
    target_label: str
    account_id: str


def _target(account: AwsAccount) -> _Target:
    return {
        "target_type": "aws_account",
        "target_id": account.account_id,
        "target_label": account.name,
        "account_id": account.account_id,
    }


def do_add_account(*, actor: str, account_id: str, name: str, **fields: Any) -> AwsAccount:
    """Register an account. Raises ``ValidationError`` (nothing written) on any invalid field,
    including an id that is already registered: adding is never an update."""
    account = AwsAccount(account_id=account_id, name=name, **fields)
    account.full_clean()
    with transaction.atomic():
        account.save()
        audit.record(
            actor,
            "account.added",
            details={field: getattr(account, field) for field in EDITABLE_FIELDS},
            **_target(account),
        )
    return account


def do_update_account(account: AwsAccount, *, actor: str, **changes: Any) -> list[str]:
    """Apply ``changes``; returns the names of the fields that changed (no event when none did)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    before = {field: getattr(account, field) for field in changes}
    changed = [field for field, value in changes.items() if before[field] != value]
    if not changed:
        return []
    for field in changed:
        setattr(account, field, changes[field])
    account.full_clean()
    with transaction.atomic():
        account.save(update_fields=changed)
        if changed == ["enabled"]:
            action = "account.enabled" if account.enabled else "account.disabled"
        else:
            action = "account.updated"
        audit.record(
            actor,
            action,
            details={field: {"from": before[field], "to": changes[field]} for field in changed},
            **_target(account),
        )
    return changed


def do_disable_account(account: AwsAccount, *, actor: str) -> bool:
    return bool(do_update_account(account, actor=actor, enabled=False))


REGION_DISCOVERY_MAX_AGE = timedelta(days=1)


def usage_regions(
    account: AwsAccount, now: datetime | None = None, *, fresh: bool = False
) -> list[str]:
    """The regions where cleanup reads what this account runs: the operator's narrowed list, or
    every region enabled in the account (``ec2:DescribeRegions``, remembered for a day, or asked
    again when ``fresh``). Raises ``aws.AwsError`` when the regions cannot be discovered: the
    caller fails closed."""
    if account.usage_regions:
        return list(account.usage_regions)
    now = now or clock.now()
    recent = (
        account.regions_discovered_at is not None
        and account.regions_discovered_at > now - REGION_DISCOVERY_MAX_AGE
    )
    if account.discovered_regions and recent and not fresh:
        return list(account.discovered_regions)
    discovered = aws.enabled_regions(account)
    if not discovered:
        raise aws.AwsError("DescribeRegions answered no region", account_id=account.account_id)
    account.discovered_regions = discovered
    account.regions_discovered_at = now
    AwsAccount.objects.filter(pk=account.pk).update(
        discovered_regions=discovered, regions_discovered_at=now
    )
    return discovered


def do_verify_account(account: AwsAccount, *, actor: str, now: datetime | None = None) -> bool:
    """Check that the console reaches the account: ``GetCallerIdentity`` through the account's
    session must answer with the registered id. Stores the outcome and audits it."""
    now = now or clock.now()
    try:
        answered = aws.caller_account(account)
    except aws.AwsError as exc:
        ok, error = False, str(exc)
    else:
        ok = answered == account.account_id
        error = "" if ok else f"the credentials act in account {answered}, not {account.account_id}"
    with transaction.atomic():
        account.last_verified_at = now
        account.last_verification_ok = ok
        account.last_verification_error = error
        account.save(
            update_fields=["last_verified_at", "last_verification_ok", "last_verification_error"]
        )
        audit.record(
            actor,
            "account.verified" if ok else "account.verify_failed",
            details={"ok": ok, "error": error},
            at=now,
            **_target(account),
        )
    return ok
