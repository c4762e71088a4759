"""Lambda: the circuit breaker's world (a queue, a function reading it through an enabled SQS
event source mapping, an alarm on the function's errors) and functions packaged as images."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from functools import cache
from typing import Any

from scenarios.clients import ClientFactory

# Never run: moto's Lambda without Docker answers invocations itself.
HANDLER = "def handler(event, context):\n    return {'batchItemFailures': []}\n"


@dataclass
class QueueFunctionAlarm:
    """What ``queue_function_mapping_alarm`` made: the names and ids a breaker is added with."""

    queue_url: str
    queue_arn: str
    function_name: str
    mapping_uuid: str
    alarm_name: str
    alarm_arn: str


@cache
def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    return buffer.getvalue()


def execution_role(iam: Any, name: str) -> str:
    """An execution role for functions (Lambda wants one; nothing checks what it allows);
    returns its ARN. Share one between many functions to save the calls."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    arn: str = role["Arn"]
    return arn


def create_queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    """An SQS queue; returns its URL and ARN."""
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def queue_function_mapping_alarm(
    clients: ClientFactory,
    name: str,
    *,
    role_arn: str | None = None,
    timeout: int | None = None,
    threshold: int = 1,
    dead_letter_queue: bool = False,
    visibility_timeout: int | None = None,
    alarm_description: str = "",
    treat_missing_data: str | None = None,
) -> QueueFunctionAlarm:
    """In the account and region of ``clients``: the queue ``<name>-queue``, the function
    ``name`` reading it through an enabled SQS mapping (batches of 10, reporting batch item
    failures), and the alarm ``<name>-errors`` on the function's ``Errors`` (sum over a minute
    at or above ``threshold``).

    ``role_arn`` is the function's execution role (default: a new ``<name>-role``); ``timeout``
    its timeout in seconds (default: Lambda's, 3 s). ``dead_letter_queue`` adds
    ``<name>-dlq`` as the queue's redrive target after 5 receives."""
    sqs = clients("sqs")
    attributes = {}
    if visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(visibility_timeout)
    if dead_letter_queue:
        _, dead_arn = create_queue(sqs, f"{name}-dlq")
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"}
        )
    queue_url, queue_arn = create_queue(sqs, f"{name}-queue", **attributes)
    function: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": role_arn or execution_role(clients("iam"), f"{name}-role"),
        "Handler": "handler.handler",
        "Code": {"ZipFile": function_zip()},
    }
    if timeout is not None:
        function["Timeout"] = timeout
    lam = clients("lambda")
    lam.create_function(**function)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        Enabled=True,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    alarm_name = f"{name}-errors"
    alarm: dict[str, Any] = {
        "AlarmName": alarm_name,
        "MetricName": "Errors",
        "Namespace": "AWS/Lambda",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Dimensions": [{"Name": "FunctionName", "Value": name}],
    }
    if alarm_description:
        alarm["AlarmDescription"] = alarm_description
    if treat_missing_data:
        alarm["TreatMissingData"] = treat_missing_data
    cloudwatch = clients("cloudwatch")
    cloudwatch.put_metric_alarm(**alarm)
    alarm_arn = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]["AlarmArn"]
    return QueueFunctionAlarm(
        queue_url=queue_url,
        queue_arn=queue_arn,
        function_name=name,
        mapping_uuid=mapping["UUID"],
        alarm_name=alarm_name,
        alarm_arn=alarm_arn,
    )


def image_function(
    clients: ClientFactory, name: str, image_uri: str, *, role_arn: str | None = None
) -> str:
    """A function packaged as the container image ``image_uri``; returns its ARN."""
    answer = clients("lambda").create_function(
        FunctionName=name,
        Role=role_arn or execution_role(clients("iam"), f"{name}-role"),
        PackageType="Image",
        Code={"ImageUri": image_uri},
    )
    arn: str = answer["FunctionArn"]
    return arn
