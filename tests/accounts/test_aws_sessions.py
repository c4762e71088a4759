"""Sessions per account on assumed-role credentials (moto: other accounts are reached by AssumeRole)."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from accounts import aws as gateway


@pytest.fixture
def production(make_account):
    return make_account("222222222222", "production")


def test_a_session_for_an_account_creates_resources_in_that_account_only(aws, production):
    aws_session = gateway.session(production, "eu-west-1")
    aws_session.client("sqs").create_queue(QueueName="orders")

    in_production = aws_session.client("sqs").list_queues().get("QueueUrls", [])
    in_default = boto3.client("sqs", region_name="eu-west-1").list_queues().get("QueueUrls", [])

    assert [url.split("/")[-2:] for url in in_production] == [["222222222222", "orders"]]
    assert in_default == []


def test_the_session_acts_as_the_assumed_role(aws, production):
    answer = gateway.client(production, "eu-west-1", "sts").get_caller_identity()
    assert answer["Account"] == "222222222222"
    assert ":assumed-role/platform-console/" in answer["Arn"]


def test_clients_are_cached_per_account_region_and_service(aws, production, make_account):
    development = make_account("333333333333", "development")
    assert gateway.client(production, "eu-west-1", "ecs") is gateway.client(
        production, "eu-west-1", "ecs"
    )
    assert gateway.client(production, "eu-west-1", "ecs") is not gateway.client(
        production, "us-east-1", "ecs"
    )
    assert gateway.client(production, "eu-west-1", "ecs") is not gateway.client(
        development, "eu-west-1", "ecs"
    )


def test_clients_retry_adaptively_with_timeouts(aws, production, settings):
    config = gateway.client(production, "eu-west-1", "ecr").meta.config
    assert config.retries["mode"] == "adaptive"
    assert config.connect_timeout == settings.AWS_CONNECT_TIMEOUT
    assert config.read_timeout == settings.AWS_READ_TIMEOUT


def test_the_external_id_is_passed_when_set(aws, make_account):
    account = make_account("444444444444", "partner", external_id="console-7f3a")
    seen = []

    def capture(params, **kwargs):
        seen.append(params)

    gateway._console_session("eu-west-1").events.register(
        "provide-client-params.sts.AssumeRole", capture
    )
    gateway.client(account, "eu-west-1", "sqs").list_queues()

    assert seen and seen[0]["ExternalId"] == "console-7f3a"
    assert seen[0]["RoleArn"] == "arn:aws:iam::444444444444:role/platform-console"


def test_credentials_refresh_themselves_before_they_expire(aws, production):
    clock = {"now": datetime.now(UTC)}
    credentials = gateway.credentials(production, time_fetcher=lambda: clock["now"])

    first = credentials.get_frozen_credentials()
    assert (
        credentials.get_frozen_credentials().access_key == first.access_key
    )  # still fresh: cached

    # Five minutes before expiry is inside botocore's mandatory refresh window.
    clock["now"] = credentials._expiry_time - timedelta(minutes=5)
    refreshed = credentials.get_frozen_credentials()

    assert refreshed.access_key != first.access_key


def test_the_endpoint_url_from_the_environment_is_honoured(aws, production, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    gateway.clear_caches()
    assert (
        gateway.client(production, "eu-west-1", "ecr").meta.endpoint_url == "http://127.0.0.1:4566"
    )


def test_an_account_without_a_role_uses_the_consoles_own_credentials(aws, make_account):
    account = make_account("123456789012", "console", role_arn="")
    assert gateway.caller_account(account) == "123456789012"


def test_aws_errors_say_whether_a_retry_may_help():
    from botocore.exceptions import ClientError

    def fail(code, status):
        with gateway.translated_errors("222222222222"):
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                "Op",
            )

    with pytest.raises(gateway.AwsError) as throttled:
        fail("ThrottlingException", 400)
    with pytest.raises(gateway.AwsError) as denied:
        fail("AccessDenied", 403)

    assert throttled.value.retryable and not denied.value.retryable
    assert str(denied.value) == "account 222222222222: AccessDenied: no"
