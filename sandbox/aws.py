"""The sandbox AWS of ``make demo``: its three accounts, clients acting in them, and event delivery.

The only module of ``sandbox`` that talks to AWS. Clients act in a sandbox account the way the
console does: ``sts:AssumeRole`` into ``arn:aws:iam::<account>:role/platform-console``, through
``accounts.aws`` (so they are cached per account, region and service, and forgotten with the
console's own clients). boto3 honours ``AWS_ENDPOINT_URL``: in the demo that is moto's server, in
tests the in-process moto of the ``aws`` fixture. Nothing here is meant for real AWS.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from accounts import aws as accounts_aws
from accounts.models import AwsAccount
from console import clock
from scenarios.clients import ClientFactory
from webhooks import actions as webhook_actions
from webhooks import classify
from webhooks.models import InboundEvent
from webhooks.views import eventbridge_problem

DEMO_REGION = "eu-west-1"
ROLE_NAME = "platform-console"
# moto's default account: where the console's own credentials (``testing``) act in the sandbox.
CONSOLE_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class SandboxAccount:
    account_id: str
    name: str
    environment: str
    is_registry: bool = False

    @property
    def role_arn(self) -> str:
        return role_arn(self.account_id)


SHARED = SandboxAccount("111111111111", "shared", "shared", is_registry=True)
PRODUCTION = SandboxAccount("222222222222", "production", "prod")
DEVELOPMENT = SandboxAccount("333333333333", "development", "dev")
ACCOUNTS = (SHARED, PRODUCTION, DEVELOPMENT)


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{ROLE_NAME}"


def client(account_id: str, service: str, region: str = DEMO_REGION) -> Any:
    """A boto3 client acting in sandbox account ``account_id`` (assumed role, cached)."""
    account = AwsAccount(account_id=account_id, role_arn=role_arn(account_id), regions=[region])
    return accounts_aws.client(account, region, service)


def clients(account_id: str, region: str = DEMO_REGION) -> ClientFactory:
    """The builders' client factory (``scenarios``) for sandbox account ``account_id``."""
    return lambda service: client(account_id, service, region)


def clear() -> None:
    """Forget every cached client (a new moto backend does not know the old assumed-role keys)."""
    accounts_aws.clear_caches()


def create_console_role(account_id: str) -> str:
    """Create the role the console assumes, as an account owner would; idempotent. moto lets
    AssumeRole through without it, the role is there so the sandbox looks like a real set-up."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{CONSOLE_ACCOUNT_ID}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = client(account_id, "iam")
    try:
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise
    return role_arn(account_id)


def deliver(event: dict[str, Any]) -> InboundEvent | None:
    """Put an EventBridge event in the console's inbox as if it had arrived at
    ``POST /webhooks/eventbridge/``: same checks, stored and enqueued for the worker the same way.
    ``id``, ``version``, ``time``, ``region`` and ``resources`` are filled in when missing.
    Returns the stored event, or ``None`` for a duplicate id. Raises ``ValueError`` for an event
    the endpoint would answer 400."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": DEMO_REGION,
        "resources": [],
        **event,
    }
    problem = eventbridge_problem(event)
    if problem:
        raise ValueError(f"the console would refuse this event: {problem}")
    return webhook_actions.do_receive_event(
        source=InboundEvent.Source.EVENTBRIDGE,
        dedupe_key=event["id"],
        raw_body=json.dumps(event),
        classification=classify.classify_eventbridge(event),
    )


# --- AWS Organizations (issue 14: accounts from the organization) ------------------------------

ORGANIZATIONS_ROLE_NAME = "platform-console-organizations"


def organizations_client() -> Any:
    """The organization's API as its management account sees it: the sandbox's management
    account is the console's own (moto's default account), as in a single-account demo."""
    return accounts_aws._console_session("us-east-1").client("organizations")


def ensure_organization() -> str:
    """The sandbox organization's root id, creating the organization when moto has none."""
    api = organizations_client()
    try:
        api.create_organization(FeatureSet="ALL")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AlreadyInOrganizationException":
            raise
    root: str = api.list_roots()["Roots"][0]["Id"]
    return root


def ensure_unit(parent_id: str, name: str) -> str:
    api = organizations_client()
    for page in api.get_paginator("list_organizational_units_for_parent").paginate(
        ParentId=parent_id
    ):
        for unit in page["OrganizationalUnits"]:
            if unit["Name"] == name:
                return str(unit["Id"])
    created = api.create_organizational_unit(ParentId=parent_id, Name=name)
    return str(created["OrganizationalUnit"]["Id"])


def ensure_member_account(root_id: str, unit_id: str, name: str) -> str:
    """The account called ``name`` in unit ``unit_id`` (created there, with the workload role the
    StackSet would create in it, when missing; an existing one is returned whatever its state)."""
    api = organizations_client()
    for page in api.get_paginator("list_accounts_for_parent").paginate(ParentId=unit_id):
        for account in page["Accounts"]:
            if account["Name"] == name:
                return str(account["Id"])
    created = api.create_account(AccountName=name, Email=f"aws+{name}@example.com")
    account_id = str(created["CreateAccountStatus"]["AccountId"])
    api.move_account(AccountId=account_id, SourceParentId=root_id, DestinationParentId=unit_id)
    create_console_role(account_id)
    return account_id


def close_member_account(account_id: str) -> None:
    organizations_client().close_account(AccountId=account_id)
