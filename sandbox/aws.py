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
