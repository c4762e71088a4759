"""What a probe sends and how its answer is judged (pure functions, no I/O).

The record is the one Lambda's SQS poller would build, so a function that reads
``eventSourceARN``, ``awsRegion`` or message attributes behaves in a probe as it does in
production (the seed article's synthetic record had none of them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from breaker.aws import Invocation, Message


def lambda_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    """``{"StringValue": "v", "DataType": "String"}`` -> Lambda's lower-camel shape."""
    converted: dict[str, Any] = {}
    if "StringValue" in attribute:
        converted["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        converted["binaryValue"] = attribute["BinaryValue"]  # base64 already
    converted["stringListValues"] = list(attribute.get("StringListValues") or [])
    converted["binaryListValues"] = list(attribute.get("BinaryListValues") or [])
    converted["dataType"] = attribute.get("DataType", "String")
    return converted


def sqs_event(message: Message, *, queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": dict(message.attributes),
        "messageAttributes": {
            name: lambda_attribute(attribute)
            for name, attribute in message.message_attributes.items()
        },
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.message_attributes and message.md5_of_message_attributes:
        record["md5OfMessageAttributes"] = message.md5_of_message_attributes
    return {"Records": [record]}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str


def judge(invocation: Invocation, message_id: str, *, reports_batch_item_failures: bool) -> Verdict:
    """Failed when the function errored, when it reported the probe message as a batch item
    failure, or, for a mapping with ``ReportBatchItemFailures``, when its answer is not a valid
    batch response (Lambda itself then fails the whole batch)."""
    text = invocation.payload.decode("utf-8", errors="replace")
    if invocation.function_error:
        return Verdict(False, f"FunctionError {invocation.function_error}: {text[:1000]}")
    if not 200 <= invocation.status_code < 300:
        return Verdict(False, f"invoke answered HTTP {invocation.status_code}: {text[:1000]}")
    stripped = text.strip()
    try:
        answer = json.loads(stripped) if stripped else None
    except ValueError:
        if reports_batch_item_failures:
            return Verdict(False, f"unparsable batch response: {text[:300]}")
        return Verdict(True, "")
    if answer is None:
        return Verdict(True, "")
    if not isinstance(answer, dict):
        if reports_batch_item_failures:
            return Verdict(False, f"unparsable batch response (not an object): {text[:300]}")
        return Verdict(True, "")
    if "batchItemFailures" not in answer or answer["batchItemFailures"] is None:
        return Verdict(True, "")
    failures = answer["batchItemFailures"]
    if not isinstance(failures, list):
        return Verdict(
            False, f"unparsable batch response (batchItemFailures is not a list): {text[:300]}"
        )
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if identifier == message_id:
            return Verdict(False, f"batchItemFailures names the probe message {message_id}")
        if not isinstance(identifier, str) or not identifier:
            return Verdict(False, f"unparsable batch response (bad itemIdentifier): {text[:300]}")
        return Verdict(False, f"unparsable batch response (unknown itemIdentifier {identifier!r})")
    return Verdict(True, "")
