"""Event shapes of ../shared/reference/aws.md, for tests of every app."""

from __future__ import annotations

import uuid
from typing import Any

ACCOUNT = "111122223333"
ALARM = "orders-errors"
ALARM_ARN = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{ALARM}"


def alarm_notification(
    state: str = "ALARM",
    *,
    old: str = "OK",
    alarm: str = ALARM,
    at: str = "2026-11-27T10:15:02.123+0000",
) -> dict[str, Any]:
    """The ``Message`` of an SNS notification sent by a CloudWatch alarm."""
    return {
        "AlarmName": alarm,
        "AlarmDescription": None,
        "AWSAccountId": ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": "2026-11-01T09:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [5.0] was >= 1.0",
        "StateChangeTime": at,
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{alarm}",
        "OldStateValue": old,
        "OKActions": [],
        "AlarmActions": [],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [{"value": "orders", "name": "FunctionName"}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1.0,
            "TreatMissingData": "missing",
        },
    }


def alarm_event(
    state: str = "ALARM",
    *,
    previous: str = "OK",
    alarm: str = ALARM,
    event_id: str | None = None,
    at: str = "2026-11-27T10:15:02.123+0000",
) -> dict[str, Any]:
    """A CloudWatch alarm state change as EventBridge delivers it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-27T10:15:02Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{alarm}"],
        "detail": {
            "alarmName": alarm,
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": at},
            "previousState": {
                "value": previous,
                "reason": "",
                "timestamp": "2026-11-27T10:00:00.000+0000",
            },
            "configuration": {"metrics": []},
        },
    }


def deregistration_event(
    family_revision: str = "orders:7",
    *,
    event_name: str = "DeregisterTaskDefinition",
    account: str = ACCOUNT,
    event_id: str | None = None,
    image: str = "999999999999.dkr.ecr.eu-west-1.amazonaws.com/orders:1.4.2",
) -> dict[str, Any]:
    """CloudTrail's DeregisterTaskDefinition call as EventBridge delivers it."""
    arn = f"arn:aws:ecs:eu-west-1:{account}:task-definition/{family_revision}"
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": account,
        "time": "2026-11-27T10:20:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "eventTime": "2026-11-27T10:20:00Z",
            "eventSource": "ecs.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "eu-west-1",
            "requestParameters": {"taskDefinition": family_revision},
            "responseElements": {
                "taskDefinition": {
                    "taskDefinitionArn": arn,
                    "family": family_revision.split(":")[0],
                    "revision": int(family_revision.split(":")[1]),
                    "status": "INACTIVE",
                    "containerDefinitions": [{"name": "app", "image": image}],
                }
            },
        },
    }


def config_item_event(*, event_id: str | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Config Configuration Item Change",
        "source": "aws.config",
        "account": ACCOUNT,
        "time": "2026-11-27T10:25:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "configurationItemDiff": {"changeType": "UPDATE"},
            "configurationItem": {
                "resourceType": "AWS::ECS::TaskDefinition",
                "resourceId": "orders:7",
                "configuration": {"Status": "INACTIVE", "ContainerDefinitions": []},
            },
        },
    }
