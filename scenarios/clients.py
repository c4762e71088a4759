"""Client factories: what a builder is given to reach AWS, a function from a service name
("sqs", "lambda", ...) to a boto3 client of one account and region."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from accounts.models import AwsAccount

ClientFactory = Callable[[str], Any]

# moto's default account: the one the credentials below act in when nothing else is assumed.
MOTO_ACCOUNT = "123456789012"
REGION = "eu-west-1"


def at_endpoint(endpoint_url: str, region: str = REGION) -> ClientFactory:
    """Clients of the AWS API at ``endpoint_url`` (moto's server) with moto's test credentials,
    so they act in ``MOTO_ACCOUNT``; one client per service, made on first use."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )

    @cache
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    return client


def for_account(account: AwsAccount, region: str = REGION) -> ClientFactory:
    """Clients acting in a registered account the way the console reaches it (its role,
    assumed through ``accounts.aws``, cached there)."""
    from accounts import aws as accounts_aws

    return lambda service: accounts_aws.client(account, region, service)
