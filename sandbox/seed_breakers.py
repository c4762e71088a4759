"""Sandbox data for the circuit breakers: in production and development a queue (with a
dead-letter queue), a function, an enabled SQS event source mapping, an alarm on the function's
errors, and the console's breaker on them (added through the breaker's own action)."""

from __future__ import annotations

import io
import json
import zipfile

from accounts.models import AwsAccount
from breaker import actions
from breaker.models import Breaker
from sandbox import aws

ACTOR = "sandbox"
FUNCTION = "orders-worker"
TARGETS = [(aws.PRODUCTION, "orders-production"), (aws.DEVELOPMENT, "orders-development")]


def _function_zip() -> bytes:
    """The code is never run: moto's Lambda without Docker answers invocations itself."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "handler.py", "def handler(event, context):\n    return {'batchItemFailures': []}\n"
        )
    return buffer.getvalue()


def create_function(account_id: str, region: str = aws.DEMO_REGION) -> dict[str, str]:
    """Create the queue, function, mapping and alarm in the sandbox account; returns their names."""
    sqs = aws.client(account_id, "sqs", region)
    dead = sqs.create_queue(QueueName=f"{FUNCTION}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=f"{FUNCTION}-queue",
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    role = aws.client(account_id, "iam", region).create_role(
        RoleName=f"{FUNCTION}-execution",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = aws.client(account_id, "lambda", region)
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _function_zip()},
        Timeout=30,
    )
    lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=FUNCTION,
        Enabled=True,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    alarm = f"{FUNCTION}-errors"
    aws.client(account_id, "cloudwatch", region).put_metric_alarm(
        AlarmName=alarm,
        AlarmDescription=f"Errors of {FUNCTION}: opens its circuit breaker",
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        Dimensions=[{"Name": "FunctionName", "Value": FUNCTION}],
    )
    return {"function": FUNCTION, "queue_arn": queue_arn, "alarm": alarm}


def seed() -> list[Breaker]:
    breakers = []
    for account, name in TARGETS:
        existing = Breaker.objects.filter(name=name).first()
        if existing is not None:  # `make demo` starts both moto and the database afresh
            breakers.append(existing)
            continue
        created = create_function(account.account_id)
        breakers.append(
            actions.do_add_breaker(
                actor=ACTOR,
                name=name,
                account=AwsAccount.objects.get(account_id=account.account_id),
                region=aws.DEMO_REGION,
                function_name=created["function"],
                alarms=[created["alarm"]],
            )
        )
    actions.do_reconcile(actor=ACTOR)  # read the alarms now, not at the worker's first tick
    return breakers
