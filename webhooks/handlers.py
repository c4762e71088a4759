"""The webhooks app's own handlers: SNS subscription housekeeping."""

from __future__ import annotations

import audit
from webhooks import registry, sns
from webhooks.models import InboundEvent


def confirm_subscription(event: InboundEvent) -> str:
    """Visit the SubscribeURL (the topic was checked against SNS_TOPIC_ARNS before storing)."""
    envelope = event.envelope
    sns.confirm_subscription(envelope["SubscribeURL"])
    audit.record(
        event.actor,
        "webhook.subscription_confirmed",
        target_type="sns_topic",
        target_id=event.topic_arn,
        target_label=event.topic_arn,
        account_id=event.account_id,
        details={"event_id": event.pk, "message_id": event.dedupe_key},
    )
    return f"subscription to {event.topic_arn} confirmed"


def record_unsubscribe(event: InboundEvent) -> str:
    return (
        f"unsubscribed from {event.topic_arn}; the console does not resubscribe by itself "
        "(subscribe the endpoint again in SNS if this was not intended)"
    )


def register() -> None:
    registry.register(registry.SUBSCRIPTION_CONFIRMATION, confirm_subscription)
    registry.register(registry.UNSUBSCRIBE_CONFIRMATION, record_unsubscribe)
