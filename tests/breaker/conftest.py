"""A production account in moto with a queue, a function, an SQS mapping and an alarm on the
function's errors, and a controllable stand-in for the function's answers."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ReadTimeoutError

from accounts import aws as accounts_aws
from breaker import actions
from breaker.models import Breaker
from tests.webhooks.signing import sns_signer  # noqa: F401  (fixture: alarms through the SNS door)

ACCOUNT = "222222222222"
REGION = "eu-west-1"
# Two hours behind the wall clock: moto stamps alarm changes with the real time, so a change made
# in moto during a test is always newer than the notifications a test applies "at" NOW + minutes.
NOW = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


@dataclass
class Lambda:
    """The sandbox function: records what it received, answers what the test queued."""

    account: object
    region: str
    queue_url: str
    queue_arn: str
    function_name: str
    mapping_uuid: str
    alarm_name: str
    alarm_arn: str
    received: list = field(default_factory=list)
    answers: list = field(default_factory=list)

    def client(self, service: str):
        return accounts_aws.client(self.account, self.region, service)

    def send(self, body: str = "order-1", **attributes) -> str:
        params = {"QueueUrl": self.queue_url, "MessageBody": body}
        if attributes:
            params["MessageAttributes"] = attributes
        return self.client("sqs").send_message(**params)["MessageId"]

    def queued(self) -> int:
        """Messages in the queue, visible or not."""
        answer = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(answer["ApproximateNumberOfMessages"]) + int(
            answer["ApproximateNumberOfMessagesNotVisible"]
        )

    def visible(self) -> int:
        answer = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(answer["ApproximateNumberOfMessages"])

    def mapping_state(self) -> str:
        return self.client("lambda").get_event_source_mapping(UUID=self.mapping_uuid)["State"]

    def set_mapping(self, enabled: bool) -> None:
        self.client("lambda").update_event_source_mapping(UUID=self.mapping_uuid, Enabled=enabled)

    def set_alarm(self, state: str, reason: str = "Threshold Crossed: 5 errors") -> None:
        self.client("cloudwatch").set_alarm_state(
            AlarmName=self.alarm_name, StateValue=state, StateReason=reason
        )

    def answer_with(
        self, payload=None, *, function_error: str | None = None, timeout: bool = False
    ) -> None:
        self.answers.append((payload, function_error, timeout))


def build_function(
    account, region: str = REGION, name: str = "orders-worker", timeout: int = 5
) -> dict:
    """Queue, function, enabled SQS mapping and an Errors alarm in ``account``."""
    client = lambda service: accounts_aws.client(account, region, service)  # noqa: E731
    role = client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    queue_url = client("sqs").create_queue(QueueName=f"{name}-queue")["QueueUrl"]
    queue_arn = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": function_zip()},
        Timeout=timeout,
    )
    mapping = client("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        Enabled=True,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    alarm_name = f"{name}-errors"
    client("cloudwatch").put_metric_alarm(
        AlarmName=alarm_name,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": name}],
    )
    alarm_arn = client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0][
        "AlarmArn"
    ]
    return {
        "queue_url": queue_url,
        "queue_arn": queue_arn,
        "function_name": name,
        "mapping_uuid": mapping["UUID"],
        "alarm_name": alarm_name,
        "alarm_arn": alarm_arn,
    }


_LOADER = botocore.loaders.create_loader()


@pytest.fixture(autouse=True)
def shared_service_models(monkeypatch):
    """Every test builds fresh sessions (moto backends do not outlive a test); sharing botocore's
    loader keeps them from parsing the same service models again each time (~0.5 s a test)."""
    real = botocore.session.get_session

    def get_session(env_vars=None):
        session = real(env_vars)
        session.register_component("data_loader", _LOADER)
        return session

    monkeypatch.setattr(botocore.session, "get_session", get_session)


@pytest.fixture
def production(aws, make_account):
    return make_account(ACCOUNT, "production")


@pytest.fixture
def function(production, monkeypatch) -> Lambda:
    fake = Lambda(account=production, region=REGION, **build_function(production))

    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fake.received.append(json.loads(body) if body else None)
        payload, function_error, timeout = (
            fake.answers.pop(0) if fake.answers else (None, None, False)
        )
        if timeout:
            raise ReadTimeoutError(endpoint_url=f"https://lambda.{REGION}.amazonaws.com/invoke")
        if callable(payload):
            payload = payload(fake.received[-1])
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        if payload is None:
            return b"null"
        return payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return fake


@pytest.fixture
def sqs_clock(monkeypatch):
    """Moves moto's SQS clock (visibility timeouts are real time there) instead of sleeping."""
    import moto.sqs.models as sqs_models

    real = sqs_models.unix_time_millis
    offset = {"seconds": 0.0}
    monkeypatch.setattr(
        sqs_models, "unix_time_millis", lambda *a: real(*a) + offset["seconds"] * 1000
    )

    def advance(seconds: float) -> None:
        offset["seconds"] += seconds

    return advance


def half_open(breaker: Breaker, function: Lambda, at: datetime = NOW) -> Breaker:
    """ALARM then OK, as the inbox would deliver them."""
    from breaker import handlers
    from tests.breaker.events import eventbridge_alarm

    for state, when in [("ALARM", at - timedelta(minutes=5)), ("OK", at)]:
        change = handlers.parse_alarm_change(eventbridge_alarm(function.alarm_arn, state, when))
        actions.do_apply_alarm_state(breaker, change, actor="webhook:eventbridge", now=when)
    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN
    return breaker


@pytest.fixture
def breaker(function) -> Breaker:
    return actions.do_add_breaker(
        actor="fixture",
        name="orders",
        account=function.account,
        region=REGION,
        function_name=function.function_name,
        alarms=[function.alarm_arn],
        now=NOW,
    )
