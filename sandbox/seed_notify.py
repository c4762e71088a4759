"""Sandbox data for notifications: a channel to the demo's own webhook sink (``demo_notify``), for
every event and account, and a first test message the worker sends once it starts."""

from __future__ import annotations

import os

from notify import actions
from notify.events import EVENT_TYPES
from notify.models import Channel

ACTOR = "sandbox"
NAME = "demo webhook"
SINK_ENV = "DEMO_NOTIFY_SINK"  # set by `manage.py demo`: json://127.0.0.1:PORT/sandbox/notify/sink/


def seed() -> Channel | None:
    url = os.environ.get(SINK_ENV)
    if not url:
        return None
    channel = Channel.objects.filter(name=NAME).first()
    if channel is None:
        channel = actions.do_save_channel(
            None,
            actor=ACTOR,
            name=NAME,
            url=url,
            events=EVENT_TYPES,
            all_accounts=True,
            accounts=[],
            enabled=True,
        )
        actions.do_send_test(channel, actor=ACTOR)
    return channel
