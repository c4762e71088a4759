"""The breaker's only door to AWS: event source mappings, alarms, the function, its queue.

Returns small dataclasses and raises ``BreakerAwsError`` (with ``retryable``); "not found" is a
normal answer (``None``). Probe invocations use their own client with SDK retries off and a read
timeout above the function's timeout: a retried probe would run the message twice, and a read
timeout below the function's would call a slow success a failure.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accounts import aws as accounts_aws

if TYPE_CHECKING:
    from accounts.models import AwsAccount

DESCRIBE_ALARMS_BATCH = 100  # DescribeAlarms takes at most 100 names a call
MAPPING_WAIT_SECONDS = 30.0
MAPPING_POLL_SECONDS = 1.0


class BreakerAwsError(accounts_aws.AwsError):
    pass


@dataclass(frozen=True)
class Mapping:
    uuid: str
    function_arn: str
    event_source_arn: str
    state: str
    state_reason: str = ""
    batch_size: int | None = None
    reports_batch_item_failures: bool = False
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency; None: no limit

    @property
    def scaling(self) -> dict[str, int]:
        """The ScalingConfig as UpdateEventSourceMapping takes it (``{}`` removes the limit)."""
        return {} if self.max_concurrency is None else {"MaximumConcurrency": self.max_concurrency}

    @property
    def function_name(self) -> str:
        return self.function_arn.split(":function:", 1)[-1].split(":", 1)[0]

    @property
    def is_sqs(self) -> bool:
        return (
            self.event_source_arn.startswith("arn:")
            and self.event_source_arn.split(":")[2] == "sqs"
        )

    @property
    def queue_name(self) -> str:
        return self.event_source_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Alarm:
    name: str
    arn: str
    state: str
    reason: str
    changed_at: datetime
    namespace: str = ""
    metric: str = ""


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    timeout: int
    package_type: str


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    md5_of_message_attributes: str | None
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation:
    status_code: int
    function_error: str | None
    payload: bytes


def _errors(account: AwsAccount) -> AbstractContextManager[None]:
    return accounts_aws.translated_errors(account.account_id, BreakerAwsError)


def _client(account: AwsAccount, region: str, service: str, **config: Any) -> Any:
    return accounts_aws.client(account, region, service, **config)


def _mapping(answer: dict[str, Any]) -> Mapping:
    return Mapping(
        uuid=answer["UUID"],
        function_arn=answer.get("FunctionArn", ""),
        event_source_arn=answer.get("EventSourceArn", ""),
        state=answer.get("State", ""),
        state_reason=answer.get("StateTransitionReason", ""),
        batch_size=answer.get("BatchSize"),
        reports_batch_item_failures="ReportBatchItemFailures"
        in (answer.get("FunctionResponseTypes") or []),
        max_concurrency=(answer.get("ScalingConfig") or {}).get("MaximumConcurrency"),
    )


# ---- event source mappings ------------------------------------------------------------------


def get_mapping(account: AwsAccount, region: str, uuid: str) -> Mapping | None:
    try:
        with _errors(account):
            answer = _client(account, region, "lambda").get_event_source_mapping(UUID=uuid)
    except BreakerAwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    return _mapping(answer)


def set_mapping_enabled(
    account: AwsAccount,
    region: str,
    uuid: str,
    enabled: bool,
    *,
    scaling: dict[str, int] | None = None,
) -> Mapping:
    """Enable or disable the mapping; ``scaling``, when given, sets its ScalingConfig in the
    same call (``{"MaximumConcurrency": n}``, or ``{}``, which removes the limit)."""
    params: dict[str, Any] = {"UUID": uuid, "Enabled": enabled}
    if scaling is not None:
        params["ScalingConfig"] = scaling
    with _errors(account):
        answer = _client(account, region, "lambda").update_event_source_mapping(**params)
    return _mapping(answer)


def wait_for_mapping(
    account: AwsAccount,
    region: str,
    uuid: str,
    wanted: str,
    *,
    first: Mapping | None = None,
    timeout: float = MAPPING_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Mapping:
    """Poll until the mapping reports ``wanted`` (``Enabled``/``Disabled``); bounded: raises
    ``BreakerAwsError`` (retryable) with the last state seen when ``timeout`` runs out."""
    deadline = monotonic() + timeout
    mapping = first
    while True:
        if mapping is None or mapping.state != wanted:
            mapping = get_mapping(account, region, uuid)
            if mapping is None:
                raise BreakerAwsError(
                    f"event source mapping {uuid} does not exist", code="ResourceNotFoundException"
                )
        if mapping.state == wanted:
            return mapping
        if monotonic() >= deadline:
            raise BreakerAwsError(
                f"event source mapping {uuid} still {mapping.state} after {timeout:.0f} s (wanted {wanted})",
                code="MappingWaitTimeout",
                retryable=True,
                account_id=account.account_id,
            )
        sleep(MAPPING_POLL_SECONDS)
        mapping = None


def sqs_mappings(
    account: AwsAccount, region: str, function_name: str | None = None
) -> list[Mapping]:
    """Event source mappings reading SQS queues (of one function, or of the whole region)."""
    params = {"FunctionName": function_name} if function_name else {}
    with _errors(account):
        pages = (
            _client(account, region, "lambda")
            .get_paginator("list_event_source_mappings")
            .paginate(**params)
        )
        mappings = [_mapping(answer) for page in pages for answer in page["EventSourceMappings"]]
    return sorted((m for m in mappings if m.is_sqs), key=lambda m: (m.function_name, m.queue_name))


# ---- the function and its queue -----------------------------------------------------------


def function_config(account: AwsAccount, region: str, function_name: str) -> FunctionConfig | None:
    try:
        with _errors(account):
            answer = _client(account, region, "lambda").get_function_configuration(
                FunctionName=function_name
            )
    except BreakerAwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    return FunctionConfig(
        name=answer["FunctionName"],
        arn=answer["FunctionArn"],
        timeout=int(answer.get("Timeout") or 3),
        package_type=answer.get("PackageType", "Zip"),
    )


def queue_url(account: AwsAccount, region: str, queue_arn: str) -> str:
    _, _, _, _, owner, name = queue_arn.split(":", 5)
    with _errors(account):
        url: str = _client(account, region, "sqs").get_queue_url(
            QueueName=name, QueueOwnerAWSAccountId=owner
        )["QueueUrl"]
    return url


def receive_one(
    account: AwsAccount, region: str, queue_url: str, visibility_timeout: int
) -> Message | None:
    """One message with every attribute, hidden for ``visibility_timeout`` seconds; no long poll
    (an empty queue is an answer, not something to wait for)."""
    with _errors(account):
        answer = _client(account, region, "sqs").receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=0,
        )
    messages = answer.get("Messages") or []
    if not messages:
        return None
    raw = messages[0]
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        md5_of_body=raw.get("MD5OfBody", ""),
        md5_of_message_attributes=raw.get("MD5OfMessageAttributes"),
        attributes=dict(raw.get("Attributes") or {}),
        message_attributes={
            name: {
                key: base64.b64encode(value).decode() if isinstance(value, bytes) else value
                for key, value in attribute.items()
            }
            for name, attribute in (raw.get("MessageAttributes") or {}).items()
        },
    )


def delete_message(account: AwsAccount, region: str, queue_url: str, receipt_handle: str) -> None:
    with _errors(account):
        _client(account, region, "sqs").delete_message(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle
        )


def invoke(
    account: AwsAccount, region: str, function_name: str, payload: bytes, *, read_timeout: int
) -> Invocation:
    """Synchronous invoke, one attempt. A read timeout or a connection error raises
    ``BreakerAwsError`` (the caller counts it as the function failing)."""
    client = _client(
        account,
        region,
        "lambda",
        # botocore's ``max_attempts`` counts retries (1 means two calls); this is the total.
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=read_timeout,
    )
    with _errors(account):
        answer = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=payload
        )
        body = answer["Payload"].read()
    return Invocation(
        status_code=answer.get("StatusCode", 0),
        function_error=answer.get("FunctionError"),
        payload=body,
    )


# ---- alarms ---------------------------------------------------------------------------------


def _alarm(raw: dict[str, Any]) -> Alarm:
    return Alarm(
        name=raw["AlarmName"],
        arn=raw["AlarmArn"],
        state=raw["StateValue"],
        reason=raw.get("StateReason", ""),
        changed_at=raw["StateUpdatedTimestamp"],
        namespace=raw.get("Namespace", ""),
        metric=raw.get("MetricName", ""),
    )


def describe_alarms(account: AwsAccount, region: str, names: Iterable[str]) -> dict[str, Alarm]:
    """Metric and composite alarms by name, 100 names a call; missing names are left out."""
    wanted = sorted(set(names))
    found: dict[str, Alarm] = {}
    client = _client(account, region, "cloudwatch")
    for start in range(0, len(wanted), DESCRIBE_ALARMS_BATCH):
        batch = wanted[start : start + DESCRIBE_ALARMS_BATCH]
        with _errors(account):
            for page in client.get_paginator("describe_alarms").paginate(
                AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for raw in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    found[raw["AlarmName"]] = _alarm(raw)
    return found


def list_alarms(account: AwsAccount, region: str) -> list[Alarm]:
    with _errors(account):
        pages = (
            _client(account, region, "cloudwatch")
            .get_paginator("describe_alarms")
            .paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        )
        alarms = [
            _alarm(raw)
            for page in pages
            for raw in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]
        ]
    return sorted(alarms, key=lambda alarm: alarm.name)
