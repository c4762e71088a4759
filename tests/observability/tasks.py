"""A task for the log tests (django-q imports tasks by dotted path)."""

import logging

logger = logging.getLogger(__name__)
touched: list[int] = []


def touch_event(event_id: int) -> None:
    touched.append(event_id)
    logger.info("touching event %s", event_id)
