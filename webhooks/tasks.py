"""Worker entry points (django-q)."""

from webhooks import actions


def process_event(event_id: int) -> str | None:
    return actions.do_process_event(event_id)


def process_pending() -> dict[str, int]:
    """Every minute: events accepted while no worker ran, and retries that are due."""
    return dict(actions.do_process_pending())


def drain() -> dict[str, int]:
    """The inbox's events other than alarms, in batches (asked for by the first of a burst)."""
    return dict(actions.do_drain_inbox())
