"""The recurring pass that follows the organization (see the package's docstring)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

import audit
from accounts import actions, aws
from accounts.models import AwsAccount, Organization, OrganizationMember
from accounts.organizations.common import (
    ACTIVE,
    CLOSED_STATES,
    LEASE,
    VERIFY_PER_PASS,
    VERIFY_RETRY_BASE,
    VERIFY_RETRY_CAP,
    WORKER,
    State,
    account_target,
    get_organization,
    org_target,
)
from console import backoff, clock


@dataclass
class SyncResult:
    ran: bool = True
    read_ok: bool = False
    error: str = ""
    in_scope: int = 0
    added: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    by_hand: int = 0

    def summary(self) -> dict[str, Any]:
        counts = {k: len(v) if isinstance(v, list) else v for k, v in asdict(self).items()}
        counts.pop("ran")
        return counts

    def __str__(self) -> str:
        if not self.ran:
            return f"not run: {self.error}"
        if not self.read_ok:
            return f"organization not read, nothing changed: {self.error}"
        return (
            f"{self.in_scope} accounts in scope: {len(self.added)} added, "
            f"{len(self.returned)} back, {len(self.gone)} gone, {len(self.enabled)} enabled, "
            f"{len(self.waiting)} waiting for their role, {self.by_hand} registered by hand"
        )


def _claim(now: datetime) -> bool:
    free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lte=now)
    claimed = Organization.objects.filter(free, pk=Organization.ONE)
    return bool(claimed.update(sync_lease_until=now + LEASE))


def do_sync_organization(*, actor: str = WORKER, now: datetime | None = None) -> SyncResult:
    now = now or clock.now()
    if get_organization() is None:
        return SyncResult(ran=False, error="no organization is connected")
    if not _claim(now):
        return SyncResult(ran=False, error="another pass is running")
    try:
        organization = Organization.objects.get(pk=Organization.ONE)
        return _sync(organization, actor=actor, now=now)
    finally:
        Organization.objects.filter(pk=Organization.ONE).update(sync_lease_until=None)


def _sync(organization: Organization, *, actor: str, now: datetime) -> SyncResult:
    result = SyncResult()
    try:
        read = aws.read_organization(organization)
    except aws.AwsError as exc:
        result.error = str(exc)
        _record_read(organization, result, actor=actor, now=now)
        return result
    result.read_ok = True
    found = {entry.account_id: entry for entry in read.accounts}
    in_scope = {i: entry for i, entry in found.items() if entry.state == ACTIVE}
    result.in_scope = len(in_scope)
    known = {
        account.account_id: account
        for account in AwsAccount.objects.select_related("membership").filter(
            Q(account_id__in=list(in_scope)) | Q(membership__isnull=False)
        )
    }
    for account_id, entry in in_scope.items():
        account = known.get(account_id)
        if account is None:
            result.added.append(_add(organization, entry, actor=actor, now=now).account_id)
        elif account.member is None:
            result.by_hand += 1
        else:
            if _follow(organization, account, entry, actor=actor, now=now):
                result.returned.append(account_id)
    for account_id, account in known.items():
        member = account.member
        if member is None or member.state == State.GONE or account_id in in_scope:
            continue
        listed = found.get(account_id)
        if listed is not None and listed.state not in CLOSED_STATES:
            continue  # listed but neither active nor closed (PENDING_ACTIVATION): wait and see
        if listed is not None:
            reason = f"closed in the organization (State {listed.state})"
        elif organization.include_ous or organization.exclude_ous:
            reason = "no longer in the organization's included units"
        else:
            reason = "no longer in the organization"
        _mark_gone(account, reason, listed.state if listed else "", actor=actor, now=now)
        result.gone.append(account_id)
    _verify_waiting(result, actor=actor, now=now)
    _record_read(organization, result, actor=actor, now=now)
    return result


def _add(
    organization: Organization, entry: aws.OrgAccount, *, actor: str, now: datetime
) -> AwsAccount:
    account = AwsAccount(
        account_id=entry.account_id,
        name=entry.name[:100],
        environment=organization.environment,
        role_arn=organization.member_role_arn(entry.account_id),
        external_id=organization.member_external_id,
        regions=list(organization.regions),
        usage_regions=[],  # every region enabled in the account
        enabled=False,  # until its role answers
    )
    account.full_clean()
    with transaction.atomic():
        account.save(force_insert=True)
        OrganizationMember.objects.create(
            account=account, org_state=entry.state, parent_id=entry.parent_id, first_seen_at=now
        )
        audit.record(
            actor,
            "account.added",
            details={
                "origin": "organization",
                "parent": entry.parent_id,
                "role_arn": account.role_arn,
                "regions": account.regions,
                "enabled": False,
            },
            at=now,
            **account_target(account),
        )
    return account


def _follow(
    organization: Organization,
    account: AwsAccount,
    entry: aws.OrgAccount,
    *,
    actor: str,
    now: datetime,
) -> bool:
    """An organization account still in scope: its name, its unit, whether it came back, and,
    while it waits for its role, the role the settings name now (an admin may have corrected
    the StackSet's role name). Returns whether it came back."""
    member = OrganizationMember.objects.get(pk=account.pk)
    came_back = member.state == State.GONE
    changes: dict[str, str] = {}
    if entry.name[:100] != account.name:
        changes["name"] = entry.name[:100]
    if came_back or member.state == State.PENDING:
        wanted_role = organization.member_role_arn(account.account_id)
        if (account.role_arn, account.external_id) != (
            wanted_role,
            organization.member_external_id,
        ):
            changes.update(role_arn=wanted_role, external_id=organization.member_external_id)
            member.next_verify_at = None  # try the new role at once
    if changes:
        actions.do_update_account(account, actor=actor, **changes)
    moved = bool(entry.parent_id) and entry.parent_id != member.parent_id
    with transaction.atomic():
        if moved:
            audit.record(
                actor,
                "account.moved",
                details={"from": member.parent_id, "to": entry.parent_id},
                at=now,
                **account_target(account),
            )
            member.parent_id = entry.parent_id
        if came_back:
            member.state = State.PENDING
            member.gone_at, member.gone_reason = None, ""
            member.verify_failures, member.next_verify_at = 0, None
            audit.record(
                actor,
                "account.returned",
                details={
                    "parent": member.parent_id,
                    "note": "enabled again once its role answers; its breakers stay unmanaged "
                    "until an operator turns them back on",
                },
                at=now,
                **account_target(account),
            )
        member.org_state = entry.state
        member.save()
    return came_back


def _mark_gone(
    account: AwsAccount, reason: str, org_state: str, *, actor: str, now: datetime
) -> None:
    from breaker import actions as breaker_actions  # breaker builds on accounts, not the reverse
    from breaker.models import Breaker

    with transaction.atomic():
        was_enabled = account.enabled
        account.enabled = False
        account.save(update_fields=["enabled"])
        OrganizationMember.objects.filter(pk=account.pk).update(
            state=State.GONE, gone_at=now, gone_reason=reason[:200], org_state=org_state
        )
        breakers = list(Breaker.objects.managed().filter(account=account))
        audit.record(
            actor,
            "account.gone",
            details={
                "reason": reason,
                "state": org_state,
                "was_enabled": was_enabled,
                "breakers_unmanaged": [breaker.name for breaker in breakers],
            },
            at=now,
            **account_target(account),
        )
    for breaker in breakers:
        breaker_actions.do_set_managed(breaker, managed=False, actor=actor, now=now)


def _verify_waiting(result: SyncResult, *, actor: str, now: datetime) -> None:
    """Verify the accounts waiting for their role, oldest first, at most ``VERIFY_PER_PASS``
    (an AssumeRole and a GetCallerIdentity each): the pass stays within its task's timeout
    however many accounts an organization brings at once; the rest wait for the next pass."""
    waiting = (
        OrganizationMember.objects.filter(state=State.PENDING)
        .select_related("account")
        .order_by("first_seen_at", "pk")
    )
    tried = 0
    for member in waiting:
        # Verified by hand since the last try: no need to wait out the back-off.
        due = member.may_verify(now) or member.account.last_verification_ok
        if not due or tried >= VERIFY_PER_PASS:
            result.waiting.append(member.account.account_id)
            continue
        tried += 1
        account = member.account
        if actions.do_verify_account(account, actor=actor, now=now):
            with transaction.atomic():
                OrganizationMember.objects.filter(pk=member.pk).update(
                    state=State.ACTIVE, verify_failures=0, next_verify_at=None
                )
                actions.do_update_account(account, actor=actor, enabled=True)
            result.enabled.append(account.account_id)
        else:
            failures = member.verify_failures + 1
            wait = backoff.after_failures(failures, base=VERIFY_RETRY_BASE, cap=VERIFY_RETRY_CAP)
            OrganizationMember.objects.filter(pk=member.pk).update(
                verify_failures=failures, next_verify_at=now + wait
            )
            result.waiting.append(account.account_id)


def _record_read(
    organization: Organization, result: SyncResult, *, actor: str, now: datetime
) -> None:
    """The read's outcome on the organization's row. A failure is audited when it starts or its
    reason changes, a recovery once: a pass every 15 minutes must not fill the history."""
    was_failing = organization.last_read_ok is False
    fields: dict[str, Any] = {
        "last_read_at": now,
        "last_read_ok": result.read_ok,
        "last_read_error": result.error,
    }
    if result.read_ok:
        fields.update(last_synced_at=now, last_summary=result.summary())
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(**fields)
        if not result.read_ok and result.error != organization.last_read_error:
            audit.record(
                actor,
                "organization.read_failed",
                details={"error": result.error, "nothing_changed": True},
                at=now,
                **org_target(organization),
            )
        elif result.read_ok and was_failing:
            audit.record(
                actor,
                "organization.read_recovered",
                details={"previous_error": organization.last_read_error},
                at=now,
                **org_target(organization),
            )
    for name, value in fields.items():
        setattr(organization, name, value)
