"""Worker entry points (django-q)."""

from console import clock
from webhooks import actions, registry
from webhooks.models import InboundEvent


def process_event(event_id: int) -> str | None:
    return actions.do_process_event(event_id)


def process_pending() -> str:
    """Every minute: events accepted while no worker ran, retries that are due, and events a dead
    worker held: handed to a drain (batches, shared by every worker), also when a drain was asked
    for and its task was lost."""
    now = clock.now()
    # Alarms first, here: a drain leaves fresh ones to their own tasks, which a dead worker may
    # have taken with it. The claim makes sure an alarm is handled once either way.
    alarms = InboundEvent.objects.due(now).filter(kind=registry.ALARM_STATE_CHANGE)
    handled = sum(
        1 for pk in alarms.values_list("pk", flat=True) if actions.do_process_event(pk, now)
    )
    if not InboundEvent.objects.due(now).exists():
        return f"alarms {handled}; nothing else due" if handled else "nothing due"
    actions.request_drain(force=True)
    return f"alarms {handled}; drain requested"


def drain() -> dict[str, int]:
    """The inbox's events other than alarms, in batches (asked for by the first of a burst)."""
    return dict(actions.do_drain_inbox())
