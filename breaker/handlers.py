"""The webhook inbox hands CloudWatch alarm state changes here (SNS notification or EventBridge).

Re-running a handler (the inbox retries) is harmless: each breaker applies a change only when its
``StateChangeTime`` is newer than the one it already applied for that alarm.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from breaker import actions
from breaker.models import Breaker
from webhooks import registry


def parse_alarm_change(payload: Any) -> actions.AlarmChange:
    """Either shape to one ``AlarmChange``; ``registry.Ignored`` when it is neither."""
    if not isinstance(payload, dict):
        raise registry.Ignored("not a CloudWatch alarm state change")
    try:
        if "AlarmName" in payload:  # SNS notification from the alarm's action
            arn = str(payload.get("AlarmArn") or "")
            return actions.AlarmChange(
                account_id=str(payload.get("AWSAccountId") or _arn_part(arn, 4)),
                region=_arn_part(arn, 3),
                alarm_name=str(payload["AlarmName"]),
                alarm_arn=arn,
                state=str(payload["NewStateValue"]),
                reason=str(payload.get("NewStateReason") or ""),
                changed_at=_timestamp(payload["StateChangeTime"]),
            )
        detail = payload["detail"]
        state = detail["state"]
        resources = payload.get("resources") or []
        arn = str(resources[0]) if resources else ""
        return actions.AlarmChange(
            account_id=str(payload.get("account") or _arn_part(arn, 4)),
            region=str(payload.get("region") or _arn_part(arn, 3)),
            alarm_name=str(detail["alarmName"]),
            alarm_arn=arn,
            state=str(state["value"]),
            reason=str(state.get("reason") or ""),
            changed_at=_timestamp(state["timestamp"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise registry.Ignored(
            f"malformed alarm state change: {type(exc).__name__} {exc}"
        ) from None


def _arn_part(arn: str, index: int) -> str:
    parts = arn.split(":")
    return parts[index] if len(parts) > index else ""


def _timestamp(text: Any) -> datetime:
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text}")
    return value


def on_alarm_state_change(event: Any) -> str:
    change = parse_alarm_change(event.payload)
    breakers = Breaker.objects.watching(
        account_id=change.account_id,
        region=change.region,
        alarm_name=change.alarm_name,
        alarm_arn=change.alarm_arn,
    )
    if not breakers:
        raise registry.Ignored(
            f"no breaker watches alarm {change.alarm_name} in {change.account_id} {change.region}"
        )
    # The inbox runs handlers in its transaction: disable at once, wait for Disabled after commit.
    notes = [
        actions.do_apply_alarm_state(breaker, change, actor=event.actor, wait=False)
        for breaker in breakers
    ]
    return "; ".join(notes)


def register() -> None:
    registry.register(registry.ALARM_STATE_CHANGE, on_alarm_state_change)
