"""Which kind an inbound event is, decided once when it is stored, the same for both doors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhooks import registry

TASK_DEFINITION_EVENTS = {"DeregisterTaskDefinition", "DeleteTaskDefinitions"}
SNS_TYPES = {
    "Notification": registry.OTHER,
    "SubscriptionConfirmation": registry.SUBSCRIPTION_CONFIRMATION,
    "UnsubscribeConfirmation": registry.UNSUBSCRIBE_CONFIRMATION,
}


@dataclass(frozen=True)
class Classification:
    kind: str
    account_id: str = ""
    detail_type: str = ""
    summary: str = ""


def classify_eventbridge(event: dict[str, Any]) -> Classification:
    detail_type = str(event.get("detail-type", ""))
    detail = _object(event.get("detail"))
    account = str(event.get("account", ""))[:12]
    kind = registry.OTHER
    summary = f"{event.get('source', '')} {detail_type}".strip()
    if detail_type == "CloudWatch Alarm State Change":
        kind = registry.ALARM_STATE_CHANGE
        state = _object(detail.get("state"))
        summary = f"{detail.get('alarmName', '?')} -> {state.get('value', '?')}"
    elif (
        detail_type == "AWS API Call via CloudTrail"
        and detail.get("eventSource") == "ecs.amazonaws.com"
        and detail.get("eventName") in TASK_DEFINITION_EVENTS
    ):
        kind = registry.TASK_DEFINITION_DEREGISTERED
        request = detail.get("requestParameters") or {}
        target = request.get("taskDefinition") or ", ".join(request.get("taskDefinitions") or [])
        summary = f"{detail.get('eventName')} {target}".strip()
    elif detail_type == "Config Configuration Item Change":
        kind = registry.CONFIG_ITEM_CHANGE
        item = _object(detail.get("configurationItem"))
        summary = f"{item.get('resourceType', '?')} {item.get('resourceId', '')}".strip()
    return Classification(
        kind=kind, account_id=account, detail_type=detail_type, summary=summary[:300]
    )


def classify_sns(envelope: dict[str, Any], message: Any) -> Classification:
    """``message`` is the parsed ``Message`` of a notification (a dict when it was JSON)."""
    message_type = envelope.get("Type", "")
    topic_account = _account_of_arn(envelope.get("TopicArn", ""))
    if message_type != "Notification":
        return Classification(
            kind=SNS_TYPES.get(message_type, registry.OTHER),
            account_id=topic_account,
            summary=f"{message_type} for {envelope.get('TopicArn', '?')}"[:300],
        )
    if isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message:
        return Classification(
            kind=registry.ALARM_STATE_CHANGE,
            account_id=str(message.get("AWSAccountId") or topic_account)[:12],
            summary=f"{message['AlarmName']} -> {message['NewStateValue']}"[:300],
        )
    if isinstance(message, dict) and "detail-type" in message:
        inner = classify_eventbridge(message)
        return Classification(
            kind=inner.kind,
            account_id=inner.account_id or topic_account,
            detail_type=inner.detail_type,
            summary=inner.summary,
        )
    subject = envelope.get("Subject") or ""
    return Classification(kind=registry.OTHER, account_id=topic_account, summary=str(subject)[:300])


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _account_of_arn(arn: str) -> str:
    parts = str(arn).split(":")
    return parts[4][:12] if len(parts) > 5 else ""
