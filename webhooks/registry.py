"""Who handles which kind of inbound event.

Apps register handlers in their ``AppConfig.ready``::

    from webhooks import registry
    registry.register(registry.ALARM_STATE_CHANGE, breaker.handlers.on_alarm)

A handler receives the stored ``InboundEvent``; ``event.payload`` is the parsed message (the
EventBridge event, or for an SNS notification the parsed ``Message``: a CloudWatch alarm
notification or an EventBridge event) and ``event.actor`` is ``webhook:eventbridge`` or
``webhook:sns``. It returns a short note of what it did (stored on the event), raises ``Ignored``
when the event concerns nothing the console manages, and raises anything else to have the event
retried with back-off. Handlers must be idempotent per event: a retry re-runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webhooks.models import InboundEvent

# Kinds, decided when the event is stored (see ``webhooks.classify``).
ALARM_STATE_CHANGE = "alarm_state_change"  # CloudWatch alarm: SNS notification or EventBridge
# CloudTrail DeregisterTaskDefinition / DeleteTaskDefinitions
TASK_DEFINITION_DEREGISTERED = "task_definition_deregistered"
CONFIG_ITEM_CHANGE = "config_item_change"  # AWS Config configuration item change (any resource)
SUBSCRIPTION_CONFIRMATION = "subscription_confirmation"
UNSUBSCRIBE_CONFIRMATION = "unsubscribe_confirmation"
OTHER = "other"

KINDS = [
    (ALARM_STATE_CHANGE, "Alarm state change"),
    (TASK_DEFINITION_DEREGISTERED, "Task definition deregistered"),
    (CONFIG_ITEM_CHANGE, "Config item change"),
    (SUBSCRIPTION_CONFIRMATION, "Subscription confirmation"),
    (UNSUBSCRIBE_CONFIRMATION, "Unsubscribe confirmation"),
    (OTHER, "Other"),
]

Handler = Callable[["InboundEvent"], "str | None"]


class Ignored(Exception):  # a normal outcome, not an error (hence not named ...Error)
    """The event needs nothing from the console; the message is the reason shown in the inbox."""


_handlers: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    known = {value for value, _ in KINDS}
    if kind not in known:
        raise ValueError(f"unknown event kind {kind!r}")
    existing = _handlers.get(kind)
    if existing is not None and existing is not handler:
        raise ValueError(
            f"kind {kind!r} already has a handler: {existing.__module__}.{existing.__name__}"
        )
    _handlers[kind] = handler


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


@contextmanager
def override(kind: str, handler: Handler | None) -> Iterator[None]:
    """For tests: handle ``kind`` with ``handler`` (``None``: no handler) inside the block, then put
    back whatever was registered before."""
    previous = _handlers.get(kind)
    if handler is None:
        _handlers.pop(kind, None)
    else:
        _handlers[kind] = handler
    try:
        yield
    finally:
        if previous is None:
            _handlers.pop(kind, None)
        else:
            _handlers[kind] = previous
