"""``make demo`` shows accounts from the organization: three registered by the organization's
pass, one of them closed and gone, the excluded unit's account absent."""

from __future__ import annotations

from accounts.models import AwsAccount, Organization, OrganizationMember
from audit.models import AuditEvent
from sandbox import seed_accounts, seed_organization


def test_the_sandbox_organization_brings_its_accounts_and_one_closes(aws, db):
    seed_accounts.seed()

    accounts = {account.name: account for account in seed_organization.seed()}

    assert sorted(accounts) == ["ledger", "payments", "search"]
    assert {name: a.origin for name, a in accounts.items()} == dict.fromkeys(
        accounts, "organization"
    )
    states = {name: a.membership.state for name, a in accounts.items()}
    assert states == {"payments": "active", "search": "active", "ledger": "gone"}
    assert [a.enabled for a in (accounts["payments"], accounts["search"])] == [True, True]
    assert accounts["payments"].verification_state == "ok"
    assert not AwsAccount.objects.filter(name="old-batch").exists()  # its unit is excluded
    assert AwsAccount.objects.filter(name="production").get().origin == "hand"
    assert Organization.objects.get().read_state == "ok"
    ledger_history = AuditEvent.objects.filter(account_id=accounts["ledger"].account_id)
    assert "account.gone" in ledger_history.values_list("action", flat=True)


def test_seeding_the_organization_again_adds_nothing(aws, db):
    seed_organization.seed()
    before = (AwsAccount.objects.count(), OrganizationMember.objects.count())

    seed_organization.seed()

    assert (AwsAccount.objects.count(), OrganizationMember.objects.count()) == before
