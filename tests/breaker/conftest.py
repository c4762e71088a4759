"""A production account in moto with a queue, a function, an SQS mapping and an alarm on the
function's errors, and a controllable stand-in for the function's answers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import botocore.loaders
import botocore.session
import pytest

from accounts import aws as accounts_aws
from breaker import actions
from breaker.models import Breaker
from scenarios import clients, moto_patches
from scenarios.lambdas import QueueFunctionAlarm, queue_function_mapping_alarm
from tests.webhooks.signing import sns_signer  # noqa: F401  (fixture: alarms through the SNS door)

ACCOUNT = "222222222222"
REGION = "eu-west-1"
# Two hours behind the wall clock: moto stamps alarm changes with the real time, so a change made
# in moto during a test is always newer than the notifications a test applies "at" NOW + minutes.
NOW = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


@dataclass(kw_only=True)
class Lambda(QueueFunctionAlarm):
    """The sandbox function: records what it received, answers what the test queued."""

    account: object
    region: str
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

    def answer(self, event) -> moto_patches.LambdaAnswer:
        """The next queued answer (a payload, a callable of the event, None for ``null``)."""
        self.received.append(event)
        payload, function_error, timeout = (
            self.answers.pop(0) if self.answers else (None, None, False)
        )
        if timeout:
            return moto_patches.LambdaAnswer(timeout=True)
        if callable(payload):
            payload = payload(event)
        if payload is None:
            payload = b"null"
        elif not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        return moto_patches.LambdaAnswer(payload, function_error, timeout)


def build_function(
    account, region: str = REGION, name: str = "orders-worker", timeout: int = 5
) -> QueueFunctionAlarm:
    """Queue, function, enabled SQS mapping and an Errors alarm in ``account``."""
    return queue_function_mapping_alarm(clients.for_account(account, region), name, timeout=timeout)


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
def function(production) -> Lambda:
    fake = Lambda(account=production, region=REGION, **asdict(build_function(production)))
    with moto_patches.scripted_lambda(fake.answer):
        yield fake


@pytest.fixture
def sqs_clock():
    """Moves moto's SQS clock (visibility timeouts are real time there) instead of sleeping."""
    with moto_patches.sqs_clock() as advance:
        yield advance


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
