"""Alarm state changes in the two shapes AWS sends (reference/aws.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace


def aws_time(at: datetime) -> str:
    """CloudWatch's ``StateChangeTime`` format: ``2026-11-27T10:15:02.123+0000``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}" + at.strftime("%z")


def sns_alarm(
    alarm_arn: str, state: str, at: datetime, *, old: str = "OK", reason: str = "Threshold Crossed"
) -> dict:
    _, _, _, region, account, _, name = alarm_arn.split(":", 6)
    return {
        "AlarmName": name,
        "AlarmDescription": None,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": "2026-11-01T09:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": aws_time(at),
        "Region": "EU (Ireland)" if region == "eu-west-1" else region,
        "AlarmArn": alarm_arn,
        "OldStateValue": old,
        "Trigger": {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Statistic": "SUM",
            "Period": 60,
        },
    }


def eventbridge_alarm(
    alarm_arn: str, state: str, at: datetime, *, old: str = "OK", reason: str = "Threshold Crossed"
) -> dict:
    _, _, _, region, account, _, name = alarm_arn.split(":", 6)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm_arn],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": reason, "timestamp": aws_time(at)},
            "previousState": {"value": old, "reason": "", "timestamp": aws_time(at)},
            "configuration": {"metrics": []},
        },
    }


def inbound(payload: dict, source: str = "eventbridge") -> SimpleNamespace:
    """What the webhook inbox hands a handler (before the inbox existed; see test_webhook_doors)."""
    return SimpleNamespace(payload=payload, actor=f"webhook:{source}")
