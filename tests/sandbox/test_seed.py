"""The sandbox's data: three accounts that the console reaches the way it reaches real ones."""

from __future__ import annotations

import sys

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from accounts import actions
from accounts.models import AwsAccount
from audit.models import AuditEvent
from sandbox import aws as sandbox_aws
from sandbox import seed, seed_accounts
from webhooks import registry
from webhooks.models import InboundEvent

SANDBOX_IDS = ["111111111111", "222222222222", "333333333333"]


def test_seeding_registers_the_three_sandbox_accounts_and_each_one_verifies(aws, db):
    seed_accounts.seed()

    accounts = {account.account_id: account for account in AwsAccount.objects.all()}
    assert sorted(accounts) == SANDBOX_IDS
    assert [account.account_id for account in AwsAccount.objects.registries()] == ["111111111111"]
    assert accounts["222222222222"].environment == "prod"
    assert accounts["333333333333"].role_arn == "arn:aws:iam::333333333333:role/platform-console"
    for account in accounts.values():
        assert account.regions == ["eu-west-1"]
        assert account.verification_state == "ok", account.last_verification_error
        assert actions.do_verify_account(account, actor="test"), account.last_verification_error
    assert set(
        AuditEvent.objects.filter(action="account.added").values_list("actor", flat=True)
    ) == {"sandbox"}


def test_the_console_role_exists_in_each_sandbox_account(aws, db):
    seed_accounts.seed()

    for account_id in SANDBOX_IDS:
        role = sandbox_aws.client(account_id, "iam").get_role(RoleName="platform-console")["Role"]
        assert role["Arn"] == f"arn:aws:iam::{account_id}:role/platform-console"


def test_a_sandbox_client_acts_in_its_own_account(aws):
    sandbox_aws.client("222222222222", "sqs").create_queue(QueueName="orders")

    assert (
        sandbox_aws.client("222222222222", "sts").get_caller_identity()["Account"] == "222222222222"
    )
    assert sandbox_aws.client("333333333333", "sqs").list_queues().get("QueueUrls", []) == []
    assert len(sandbox_aws.client("222222222222", "sqs").list_queues()["QueueUrls"]) == 1


def test_seeding_again_keeps_the_accounts_the_console_already_has(aws, db):
    seed_accounts.seed()
    production = AwsAccount.objects.get(account_id="222222222222")
    actions.do_update_account(production, actor="test", name="prod-eu")

    seed_accounts.seed()

    assert AwsAccount.objects.count() == 3
    assert AwsAccount.objects.get(account_id="222222222222").name == "prod-eu"
    assert AuditEvent.objects.filter(action="account.added").count() == 3


def test_seed_all_skips_a_seeder_that_does_not_exist_yet(aws, db, monkeypatch):
    monkeypatch.setattr(seed, "SEEDERS", ["sandbox.seed_accounts", "sandbox.seed_nothing_here"])

    assert seed.seed_all() == ["sandbox.seed_accounts"]
    assert AwsAccount.objects.count() == 3


def test_seed_all_does_not_hide_a_seeder_whose_own_import_fails(tmp_path, monkeypatch):
    (tmp_path / "seed_broken.py").write_text("import a_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(seed, "SEEDERS", ["seed_broken"])

    with pytest.raises(ModuleNotFoundError, match="a_package_that_is_not_installed"):
        seed.seed_all()
    sys.modules.pop("seed_broken", None)


def test_the_demo_admin_signs_in_with_the_given_password_and_has_the_admin_role(db):
    user = seed.create_demo_admin("a-long-random-password")

    assert authenticate(username="admin", password="a-long-random-password") == user
    assert user.has_perm("accounts.add_awsaccount")
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]


def test_sandbox_seed_refuses_to_run_outside_the_sandbox(db, settings, monkeypatch):
    settings.SANDBOX = False
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")

    with pytest.raises(CommandError, match="CONSOLE_SANDBOX"):
        call_command("sandbox_seed")
    assert not AwsAccount.objects.exists()


def test_sandbox_seed_refuses_to_run_against_real_aws(db, settings, monkeypatch):
    settings.SANDBOX = True
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    with pytest.raises(CommandError, match="AWS_ENDPOINT_URL"):
        call_command("sandbox_seed")
    assert not AwsAccount.objects.exists()


def test_delivered_events_land_in_the_inbox_like_posted_ones(db):
    alarm = {
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "source": "aws.cloudwatch",
        "account": "222222222222",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": "orders-errors", "state": {"value": "ALARM"}},
    }

    stored = sandbox_aws.deliver(alarm)
    duplicate = sandbox_aws.deliver(alarm)

    assert duplicate is None
    event = InboundEvent.objects.get()
    assert event.pk == stored.pk
    assert (event.source, event.kind, event.account_id) == (
        "eventbridge",
        registry.ALARM_STATE_CHANGE,
        "222222222222",
    )
    assert event.payload["region"] == "eu-west-1"
    assert event.summary == "orders-errors -> ALARM"


def test_delivering_an_event_the_endpoint_would_refuse_stores_nothing(db):
    with pytest.raises(ValueError, match="detail"):
        sandbox_aws.deliver(
            {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"}
        )
    assert not InboundEvent.objects.exists()
