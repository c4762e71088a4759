"""Follow-up work after a commit that can never fail the transaction's caller."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger("notify")


def on_commit(func: Callable[..., Any], *args: Any) -> None:
    """Run ``func(*args)`` once the current transaction commits (at once outside one). An error
    there (the task queue down, say) is logged, never raised: the change it follows is done."""

    def follow_up() -> None:
        try:
            func(*args)
        except Exception:
            logger.exception("notification work not enqueued: %s%r", func.__name__, args)

    follow_up.__qualname__ = f"notify follow-up {func.__name__}"
    transaction.on_commit(follow_up)
