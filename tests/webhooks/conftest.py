from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from tests.webhooks.signing import after_commit, sns_signer  # noqa: F401  (fixture)
from webhooks import registry

KEYS = ["first-key-0123456789abcdef", "second-key-fedcba9876543210"]
HANDLED_KINDS = [
    registry.ALARM_STATE_CHANGE,
    registry.TASK_DEFINITION_DEREGISTERED,
    registry.CONFIG_ITEM_CHANGE,
    registry.OTHER,
]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_API_KEYS = list(KEYS)


class Recorder:
    """Stands in for the handlers other apps register: remembers what it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, object]] = []

    def __call__(self, event) -> str:
        self.calls.append((event.pk, event.kind, event.payload))
        return "recorded"

    @property
    def event_ids(self) -> list[int]:
        return [event_id for event_id, _, _ in self.calls]


@pytest.fixture(autouse=True)
def handled():
    """Every event kind the other apps handle goes to a recorder, so these tests never depend on
    what breaker or cleanup do."""
    recorder = Recorder()
    with ExitStack() as stack:
        for kind in HANDLED_KINDS:
            stack.enter_context(registry.override(kind, recorder))
        yield recorder


@pytest.fixture
def post_event(client):
    def post(event, *, key: str | None = KEYS[0], raw: str | bytes | None = None):
        headers = {"X-Api-Key": key} if key is not None else {}
        body = raw if raw is not None else json.dumps(event)
        with after_commit():
            return client.post(
                "/webhooks/eventbridge/", body, content_type="application/json", headers=headers
            )

    return post


@pytest.fixture
def worker_stopped(monkeypatch):
    """Tasks go to the ORM broker queue and nothing runs them, like a cluster that is down."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
