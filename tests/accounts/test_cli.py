"""`manage.py aws_account add | list | verify` exactly as the operator contract says."""

import getpass
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AwsAccount
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
ROLE = "arn:aws:iam::222222222222:role/platform-console"


def run(*args: str) -> str:
    out = StringIO()
    call_command("aws_account", *args, stdout=out)
    return out.getvalue()


def test_add_registers_the_account_and_audits_it_as_the_os_user():
    run(
        "add",
        "222222222222",
        "--name",
        "production",
        "--role-arn",
        ROLE,
        "--regions",
        "eu-west-1,us-east-1",
        "--environment",
        "prod",
        "--external-id",
        "xid-42",
    )

    account = AwsAccount.objects.get(account_id="222222222222")
    assert (account.name, account.regions, account.external_id, account.is_registry) == (
        "production",
        ["eu-west-1", "us-east-1"],
        "xid-42",
        False,
    )
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.account_id) == (
        f"cli:{getpass.getuser()}",
        "account.added",
        "222222222222",
    )


def test_usage_regions_default_to_every_enabled_region_and_can_be_narrowed():
    run("add", "222222222222", "--name", "production", "--regions", "eu-west-1")
    run("add", "333333333333", "--name", "dev", "--usage-regions", "eu-west-1,us-east-1")

    production = AwsAccount.objects.get(account_id="222222222222")
    dev = AwsAccount.objects.get(account_id="333333333333")
    assert production.usage_regions == []
    assert production.usage_scope == "usage read in every enabled region (not discovered yet)"
    assert dev.usage_regions == ["eu-west-1", "us-east-1"]
    listed = json.loads(run("list", "--json"))
    assert [a["usage_scope"] for a in listed] == [
        "usage read in eu-west-1, us-east-1 only (narrowed by an operator)",
        "usage read in every enabled region (not discovered yet)",
    ]


def test_registry_flag_marks_the_account_as_holding_repositories():
    run("add", "111111111111", "--name", "shared", "--registry")
    assert AwsAccount.objects.get(account_id="111111111111").is_registry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["12345", "--name", "short"], "exactly 12 digits"),
        (
            ["222222222222", "--name", "bad", "--role-arn", "arn:aws:iam::2222:role"],
            "is not an IAM role ARN",
        ),
        (
            ["222222222222", "--name", "bad", "--role-arn", "arn:aws:iam::333333333333:role/x"],
            "belongs to account 333333333333",
        ),
        (
            ["222222222222", "--name", "bad", "--regions", "eu-west-1,mars-north-1"],
            "Unknown AWS region(s): mars-north-1",
        ),
        (["222222222222", "--name", "bad", "--environment", "Prod Env"], "environment label"),
        (["222222222222", "--name", "bad", "--environment", "prod\n"], "environment label"),
        (["\u0662" * 12, "--name", "arabic-indic digits"], "exactly 12 digits"),
        (["\uff12" * 12, "--name", "full-width digits"], "exactly 12 digits"),
        (["222222222222\n", "--name", "newline"], "exactly 12 digits"),
        (
            ["222222222222", "--name", "bad", "--usage-regions", "eu-west-1,atlantis-1"],
            "Unknown AWS region(s): atlantis-1",
        ),
    ],
)
def test_invalid_input_exits_with_a_precise_message_and_writes_nothing(args, message):
    with pytest.raises(CommandError) as error:
        run("add", *args)
    assert message in str(error.value)
    assert AwsAccount.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_adding_an_existing_id_is_an_error_not_an_update():
    run("add", "222222222222", "--name", "production", "--role-arn", ROLE)
    with pytest.raises(CommandError, match="already registered"):
        run("add", "222222222222", "--name", "renamed", "--role-arn", ROLE)
    assert AwsAccount.objects.get().name == "production"
    assert AuditEvent.objects.count() == 1


def test_the_cli_exits_non_zero_on_invalid_input(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=root,
        env=env,
        check=True,
        timeout=120,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "aws_account", "add", "12345", "--name", "x"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "exactly 12 digits" in result.stderr


def test_list_json_prints_every_account(make_account):
    make_account("222222222222", "production")
    make_account("111111111111", "shared", is_registry=True)

    listed = json.loads(run("list", "--json"))

    assert [(row["account_id"], row["is_registry"]) for row in listed] == [
        ("222222222222", False),
        ("111111111111", True),
    ]
    assert listed[0]["role_arn"] == ROLE
    assert "external_id" not in listed[0]


def test_verify_stores_the_result_and_audits_it(aws, make_account):
    make_account("222222222222", "production")

    output = run("verify", "222222222222")

    account = AwsAccount.objects.get()
    assert "ok" in output
    assert account.last_verification_ok is True and account.last_verified_at is not None
    assert (
        AuditEvent.objects.filter(action="account.verified", actor__startswith="cli:").count() == 1
    )


def test_verify_fails_when_the_credentials_act_in_another_account(aws, make_account):
    make_account(
        "222222222222", "production", role_arn=""
    )  # the console's own: moto's 123456789012

    with pytest.raises(CommandError, match="verification failed for 222222222222"):
        run("verify")

    account = AwsAccount.objects.get()
    assert account.last_verification_ok is False
    assert "act in account 123456789012" in account.last_verification_error
    assert AuditEvent.objects.filter(action="account.verify_failed").count() == 1


def test_verify_an_unknown_account_is_an_error():
    with pytest.raises(CommandError, match="999999999999 is not registered"):
        run("verify", "999999999999")
