"""An AWS Organization in moto for the organization tests, and a StackSet that has reached some of
its accounts.

moto lets ``sts:AssumeRole`` into any role, existing or not; AWS refuses a role that is not there.
``StackSet`` plays that refusal for the workload role, through botocore's own event hook on the
console's STS clients (moto itself is not patched): an account the StackSet has not reached does
not verify.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from accounts import aws as accounts_aws

MANAGEMENT = "123456789012"  # moto's default account: where the tests' own credentials act
ORG_ROLE = f"arn:aws:iam::{MANAGEMENT}:role/platform-console-organizations"
MEMBER_ROLE = "platform-console"


@dataclass
class MotoOrganization:
    api: Any
    root: str
    units: dict[str, str] = field(default_factory=dict)  # name -> ou id
    accounts: dict[str, list[str]] = field(default_factory=dict)  # unit name -> account ids

    def add_unit(self, name: str, parent: str | None = None) -> str:
        unit = self.api.create_organizational_unit(ParentId=parent or self.root, Name=name)
        self.units[name] = unit["OrganizationalUnit"]["Id"]
        self.accounts[name] = []
        return self.units[name]

    def add_accounts(self, unit: str, count: int) -> list[str]:
        created = []
        for _ in range(count):
            number = sum(len(ids) for ids in self.accounts.values()) + 1
            answer = self.api.create_account(
                AccountName=f"{unit}-{number:03d}", Email=f"aws+{unit}-{number}@example.com"
            )
            account_id = answer["CreateAccountStatus"]["AccountId"]
            self.api.move_account(
                AccountId=account_id, SourceParentId=self.root, DestinationParentId=self.units[unit]
            )
            created.append(account_id)
        self.accounts[unit] += created
        return created

    def move(self, account_id: str, source: str, destination: str) -> None:
        self.api.move_account(
            AccountId=account_id,
            SourceParentId=self.units[source],
            DestinationParentId=self.units[destination],
        )


def create_organization(units: dict[str, int]) -> MotoOrganization:
    api = boto3.client("organizations", region_name="us-east-1")
    api.create_organization(FeatureSet="ALL")
    organization = MotoOrganization(api=api, root=api.list_roots()["Roots"][0]["Id"])
    for name, count in units.items():
        organization.add_unit(name)
        organization.add_accounts(name, count)
    return organization


class StackSet:
    """The workload role exists in the accounts in ``reached`` only, and no other role exists
    but the organizations role."""

    def __init__(self) -> None:
        self.reached: set[str] = set()
        self.organizations_role_answers = True

    def refuse_unreached(self, params: dict[str, Any], **kwargs: Any) -> None:
        arn = params.get("RoleArn", "")
        account_id = arn.split(":")[4] if arn.count(":") >= 5 else ""
        if arn == ORG_ROLE:
            allowed = self.organizations_role_answers
        else:
            allowed = arn.endswith(f":role/{MEMBER_ROLE}") and account_id in self.reached
        if not allowed:
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDenied",
                        "Message": f"not authorized to perform sts:AssumeRole on {arn}",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "AssumeRole",
            )

    def install(self, *regions: str) -> None:
        self.regions = regions
        for region in regions:
            session = accounts_aws._console_session(region)
            session.events.register("before-parameter-build.sts.AssumeRole", self.refuse_unreached)

    def forget_credentials(self) -> None:
        """Drop the console's cached credentials (as their hour runs out), hooks kept."""
        accounts_aws.clear_caches()
        self.install(*self.regions)


class CallCounter:
    """Organizations calls made by the console, counted on its own (cached) client."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.organizations", self.count)

    def count(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1
