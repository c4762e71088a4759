"""Accounts from AWS Organizations, in moto: accounts appear, verify, close and leave, each change
in the audit history; the organization is read page by page and never half-read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_q.models import Schedule

from accounts import actions, organizations
from accounts import aws as accounts_aws
from accounts.models import AwsAccount, Organization, OrganizationMember
from audit.models import AuditEvent
from breaker.models import Breaker
from console import health, schedules
from console.models import ScheduleRun
from tests.accounts.organization import (
    MANAGEMENT,
    MEMBER_ROLE,
    ORG_ROLE,
    CallCounter,
    StackSet,
    create_organization,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=15)
State = OrganizationMember.State


@pytest.fixture
def stackset():
    stackset = StackSet()
    stackset.install("eu-west-1", "us-east-1")
    return stackset


def connect(**fields) -> Organization:
    fields.setdefault("role_arn", ORG_ROLE)
    fields.setdefault("member_role_name", MEMBER_ROLE)
    return organizations.do_connect_organization(actor="ada", now=NOW, **fields)


def sync(now: datetime = NOW) -> organizations.SyncResult:
    return organizations.do_sync_organization(now=now)


def members(state: str) -> set[str]:
    rows = OrganizationMember.objects.filter(state=state)
    return set(rows.values_list("account__account_id", flat=True))


def enabled() -> set[str]:
    return set(AwsAccount.objects.enabled().values_list("account_id", flat=True))


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def history(account_id: str) -> list[str]:
    rows = AuditEvent.objects.filter(account_id=account_id).order_by("pk")
    return list(rows.values_list("action", flat=True))


def test_200_accounts_in_three_units_appear_verify_and_disappear_with_one_unit_excluded(
    db, aws, stackset
):
    """The issue's acceptance: 200 accounts, 70 in prod, 50 in dev, 80 in sandbox (excluded)."""
    moto_org = create_organization({"prod": 70, "dev": 50, "sandbox": 80})
    prod, dev, sandbox = (set(moto_org.accounts[unit]) for unit in ("prod", "dev", "sandbox"))
    late = set(moto_org.accounts["dev"][:3])  # the StackSet has not reached these yet
    stackset.reached |= (prod | dev) - late
    organization = connect(exclude_ous=[moto_org.units["sandbox"]])
    counter = CallCounter(accounts_aws.organizations_client(organization))

    first = sync(NOW)

    assert first.read_ok, first.error
    # The walk starts at the root, whose only account is the management account: no StackSet
    # instance there, so it waits for its role like the three the StackSet has not reached.
    assert set(first.added) == prod | dev | {MANAGEMENT}
    assert not AwsAccount.objects.filter(account_id__in=sandbox).exists()
    assert enabled() == (prod | dev) - late
    assert members(State.PENDING) == late | {MANAGEMENT}
    some = AwsAccount.objects.get(account_id=moto_org.accounts["dev"][5])
    assert some.role_arn == f"arn:aws:iam::{some.account_id}:role/{MEMBER_ROLE}"
    assert (some.origin, some.usage_regions, some.verification_state) == ("organization", [], "ok")
    assert some.membership.parent_id == moto_org.units["dev"]
    waiting = AwsAccount.objects.get(account_id=MANAGEMENT)
    assert (waiting.enabled, waiting.verification_state) == (False, "failed")
    assert "AccessDenied" in waiting.last_verification_error
    # Every change audited, by the worker.
    added = events("account.added")
    assert len(added) == 121 and {e.actor for e in added} == {"worker"}
    assert {e.details["origin"] for e in added} == {"organization"}
    assert {e.account_id for e in events("account.enabled")} == (prod | dev) - late
    assert {e.account_id for e in events("account.verify_failed")} == late | {MANAGEMENT}
    # Paged: 70 and 50 accounts are 4 and 3 pages of at most 20; one call per unit for units.
    assert counter.calls["ListRoots"] == 1
    assert counter.calls["ListAccountsForParent"] == 1 + 4 + 3
    assert counter.calls["ListOrganizationalUnitsForParent"] == 3  # root, prod, dev
    assert "ListAccounts" not in counter.calls

    # The StackSet reaches the late ones; the next pass within their back-off leaves them waiting,
    # the one after it enables them.
    stackset.reached |= late
    assert sync(NOW + timedelta(minutes=5)).enabled == []
    second = sync(LATER)
    assert set(second.enabled) == late
    assert members(State.PENDING) == {MANAGEMENT}  # backing off: tried at most once an hour now

    # One account closed, one removed from the organization, one moved into the excluded unit.
    closed, removed, moved = moto_org.accounts["prod"][:2] + moto_org.accounts["dev"][-1:]
    breaker = Breaker.objects.create(
        name="orders",
        account=AwsAccount.objects.get(account_id=closed),
        region="eu-west-1",
        function_name="orders",
        mapping_uuid="00000000-0000-0000-0000-000000000001",
        queue_arn=f"arn:aws:sqs:eu-west-1:{closed}:orders",
        queue_url=f"https://sqs.eu-west-1.amazonaws.com/{closed}/orders",
        alarms=["orders-errors"],
    )
    moto_org.api.close_account(AccountId=closed)
    moto_org.api.remove_account_from_organization(AccountId=removed)
    moto_org.move(moved, "dev", "sandbox")

    third = sync(LATER + timedelta(minutes=15))

    assert set(third.gone) == {closed, removed, moved}
    assert members(State.GONE) == {closed, removed, moved}
    assert enabled() == (prod | dev) - {closed, removed, moved}
    reasons = {e.account_id: e.details["reason"] for e in events("account.gone")}
    assert reasons == {
        closed: "closed in the organization (State SUSPENDED)",
        removed: "no longer in the organization's included units",
        moved: "no longer in the organization's included units",
    }
    # Its breaker stops being managed; its rows and history stay.
    breaker.refresh_from_db()
    assert breaker.mode == Breaker.Mode.DISABLED
    assert AuditEvent.objects.filter(action="breaker.management_disabled").count() == 1
    assert history(closed) == [
        "account.added",
        "account.verified",
        "account.enabled",
        "account.gone",
        "breaker.management_disabled",
    ]
    gone = AwsAccount.objects.get(account_id=closed)
    assert (gone.enabled, gone.membership.gone_at) == (False, LATER + timedelta(minutes=15))

    # Nothing left to do: a further pass changes nothing; it only tries the management account's
    # role again, its back-off being over (15 minutes, then 30).
    before = AuditEvent.objects.latest("pk").pk
    again = sync(LATER + timedelta(minutes=30))
    assert (again.added, again.gone, again.enabled) == ([], [], [])
    new = AuditEvent.objects.filter(pk__gt=before)
    assert list(new.values_list("action", "account_id")) == [("account.verify_failed", MANAGEMENT)]
    summary = Organization.objects.get().last_summary
    assert summary["in_scope"] == 70 + 50 - 3 + 1  # prod + dev, less the three, plus the root's


@pytest.fixture
def small_org(aws, stackset):
    """prod (3 accounts, with a nested unit eu of 2) and dev (2 accounts), the StackSet everywhere."""
    moto_org = create_organization({"prod": 3, "dev": 2})
    moto_org.add_unit("eu", parent=moto_org.units["prod"])
    moto_org.add_accounts("eu", 2)
    stackset.reached |= {a for ids in moto_org.accounts.values() for a in ids} | {MANAGEMENT}
    return moto_org


def test_without_units_it_reads_the_whole_organization_page_by_page(db, aws, stackset):
    moto_org = create_organization({"prod": 21})
    stackset.reached |= set(moto_org.accounts["prod"])
    organization = connect()
    counter = CallCounter(accounts_aws.organizations_client(organization))

    result = sync()

    assert set(result.added) == set(moto_org.accounts["prod"]) | {MANAGEMENT}
    assert counter.calls["ListAccounts"] == 2  # 22 accounts, 20 a page
    assert set(counter.calls) == {"ListAccounts"}


def test_included_units_bring_their_nested_units_and_nothing_else(db, small_org):
    connect(include_ous=[small_org.units["prod"]])

    result = sync()

    assert set(result.added) == set(small_org.accounts["prod"]) | set(small_org.accounts["eu"])
    nested = AwsAccount.objects.get(account_id=small_org.accounts["eu"][0])
    assert nested.membership.parent_id == small_org.units["eu"]


def test_an_unreadable_organization_changes_nothing_says_why_and_is_tried_again(
    db, small_org, stackset
):
    connect()
    sync()
    registered = enabled()
    small_org.api.close_account(AccountId=small_org.accounts["dev"][0])

    stackset.organizations_role_answers = False
    stackset.forget_credentials()
    failed = sync(LATER)
    sync(LATER + timedelta(minutes=15))

    assert not failed.read_ok and "AccessDenied" in failed.error
    assert enabled() == registered  # the closed account is not marked gone on a failed read
    assert members(State.GONE) == set()
    organization = Organization.objects.get()
    assert (organization.read_state, organization.last_synced_at) == ("failed", NOW)
    assert "AccessDenied" in organization.last_read_error
    assert len(events("organization.read_failed")) == 1  # once, not at every pass

    stackset.organizations_role_answers = True
    stackset.forget_credentials()
    recovered = sync(LATER + timedelta(minutes=30))

    assert recovered.read_ok and recovered.gone == [small_org.accounts["dev"][0]]
    assert Organization.objects.get().read_state == "ok"
    assert len(events("organization.read_recovered")) == 1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"include_ous": ["ou-abcd-12345678"]}, "ParentNotFound"),
        ({"exclude_ous": ["ou-abcd-12345678"]}, "excluded unit(s) ou-abcd-12345678 not found"),
    ],
)
def test_a_unit_that_is_not_in_the_organization_fails_the_read_closed(
    db, small_org, setting, message
):
    organization = connect()
    sync()
    organizations.do_update_organization(organization, actor="ada", **setting)

    result = sync(LATER)

    assert not result.read_ok and message in result.error
    assert members(State.GONE) == set()


def test_accounts_registered_by_hand_are_left_alone(db, small_org, make_account):
    hand = small_org.accounts["dev"][0]
    make_account(hand, "payments-by-hand")
    connect()

    sync()
    small_org.api.close_account(AccountId=hand)
    result = sync(LATER)

    account = AwsAccount.objects.get(account_id=hand)
    assert (account.name, account.origin, account.enabled) == ("payments-by-hand", "hand", True)
    assert hand not in result.gone and result.by_hand == 0


def test_an_account_an_admin_disabled_stays_disabled(db, small_org):
    connect()
    sync()
    account = AwsAccount.objects.get(account_id=small_org.accounts["dev"][0])
    actions.do_disable_account(account, actor="ada")

    sync(LATER)

    account.refresh_from_db()
    assert account.enabled is False and account.membership.state == State.ACTIVE


def test_an_account_that_comes_back_waits_for_its_role_again(db, small_org):
    connect(exclude_ous=[small_org.units["eu"]])
    sync()
    wanderer = small_org.accounts["dev"][0]
    small_org.move(wanderer, "dev", "eu")
    sync(LATER)
    assert members(State.GONE) == {wanderer}

    small_org.move(wanderer, "eu", "dev")
    result = sync(LATER + timedelta(minutes=15))

    assert result.returned == [wanderer] and result.enabled == [wanderer]
    assert wanderer in enabled() and members(State.GONE) == set()
    assert history(wanderer)[-4:] == [
        "account.gone",
        "account.returned",
        "account.verified",
        "account.enabled",
    ]


def test_a_renamed_account_is_renamed_and_audited(db, small_org):
    connect()
    sync()
    account_id = small_org.accounts["prod"][0]
    AwsAccount.objects.filter(account_id=account_id).update(name="old name")

    sync(LATER)

    assert AwsAccount.objects.get(account_id=account_id).name == "prod-001"
    (event,) = events("account.updated")
    assert event.details == {"name": {"from": "old name", "to": "prod-001"}}


def test_two_passes_never_run_at_once(db, small_org):
    connect()
    Organization.objects.update(sync_lease_until=NOW + timedelta(minutes=5))

    busy = sync(NOW + timedelta(minutes=1))
    free = sync(NOW + timedelta(minutes=6))

    assert (busy.ran, busy.error) == (False, "another pass is running")
    assert free.ran and free.read_ok and AwsAccount.objects.count() == 8
    assert Organization.objects.get().sync_lease_until is None


def test_the_pass_does_nothing_without_an_organization(db):
    from accounts import tasks

    assert tasks.sync_organization() == "not run: no organization is connected"


def test_the_pass_is_a_schedule_that_migrate_writes_and_health_watches(db):
    (recurring,) = [r for r in schedules.registered() if r.name == "accounts.organization-sync"]
    assert (recurring.func, recurring.minutes) == ("accounts.tasks.sync_organization", 15)
    assert Schedule.objects.filter(
        name="accounts.organization-sync", func="accounts.tasks.sync_organization"
    ).exists()

    ScheduleRun.objects.filter(name="accounts.organization-sync").update(
        registered_at=NOW - timedelta(hours=2), last_run_at=NOW - timedelta(hours=1)
    )
    report = health.worker_health(now=NOW)

    assert "accounts.organization-sync" in [late.name for late in report.overdue]


def test_a_corrected_role_name_reaches_the_accounts_still_waiting_for_their_role(db, small_org):
    organization = connect(member_role_name="platform-console-typo")
    sync()
    everyone = {a for ids in small_org.accounts.values() for a in ids} | {MANAGEMENT}
    assert members(State.PENDING) == everyone and enabled() == set()

    organizations.do_update_organization(organization, actor="ada", member_role_name=MEMBER_ROLE)
    result = sync(NOW + timedelta(minutes=1))  # within the back-off: the new role is tried at once

    assert set(result.enabled) == everyone and members(State.PENDING) == set()
    account = AwsAccount.objects.get(account_id=small_org.accounts["dev"][0])
    assert account.role_arn.endswith(f":role/{MEMBER_ROLE}")
    assert (
        AuditEvent.objects.filter(action="account.updated", account_id=account.account_id)
        .get()
        .details["role_arn"]["to"]
        == account.role_arn
    )


def test_a_pass_verifies_a_bounded_number_of_accounts_the_next_one_the_rest(
    db, small_org, monkeypatch
):
    from accounts.organizations import sync as pass_module

    monkeypatch.setattr(pass_module, "VERIFY_PER_PASS", 3)
    connect()

    passes = [sync(NOW + timedelta(minutes=15 * n)) for n in range(3)]

    assert len(passes[0].added) == 8
    assert [(len(p.enabled), len(p.waiting)) for p in passes] == [(3, 5), (3, 2), (2, 0)]
    assert members(State.PENDING) == set()


def test_an_account_verified_by_hand_is_enabled_by_the_next_pass(
    db, small_org, stackset, operator_client
):
    late = small_org.accounts["dev"][0]
    stackset.reached.discard(late)
    connect()
    sync()
    assert members(State.PENDING) == {late}

    stackset.reached.add(late)
    response = operator_client.post(f"/accounts/{late}/verify/", HTTP_HX_REQUEST="true")
    assert "verified" in response.content.decode()
    result = sync(NOW + timedelta(minutes=1))  # inside the back-off: the hand's answer counts

    assert result.enabled == [late] and late in enabled()
