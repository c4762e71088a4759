"""The EventBridge API destination door: key, shape, size, dedupe."""

from __future__ import annotations

import json

import pytest

from tests.webhooks import shapes
from tests.webhooks.conftest import KEYS
from webhooks import registry
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


def test_it_accepts_an_event_and_stores_the_body_exactly_as_received(post_event, handled):
    event = shapes.alarm_event()
    raw = json.dumps(event, indent=1)  # not how we would serialise it ourselves

    response = post_event(event, raw=raw)

    assert response.status_code == 202
    stored = InboundEvent.objects.get()
    assert response.json() == {"status": "accepted", "id": stored.pk}
    assert stored.raw_body == raw
    assert stored.dedupe_key == event["id"]
    assert stored.source == "eventbridge"
    assert stored.kind == registry.ALARM_STATE_CHANGE
    assert stored.account_id == shapes.ACCOUNT
    assert stored.payload == event
    assert stored.actor == "webhook:eventbridge"


@pytest.mark.parametrize("key", KEYS)
def test_it_accepts_each_configured_key_so_a_key_can_be_rotated(post_event, key):
    response = post_event(shapes.alarm_event(), key=key)

    assert response.status_code == 202
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "missing X-Api-Key header"),
        ("", "missing X-Api-Key header"),
        ("wrong", "wrong X-Api-Key"),
    ],
)
def test_it_refuses_a_missing_or_wrong_key_and_stores_nothing(post_event, key, message):
    response = post_event(shapes.alarm_event(), key=key)

    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert not InboundEvent.objects.exists()


def test_it_refuses_everything_when_no_key_is_configured(post_event, settings):
    settings.WEBHOOK_API_KEYS = []

    response = post_event(shapes.alarm_event(), key="")
    also = post_event(shapes.alarm_event(), key=KEYS[0])

    assert response.status_code == also.status_code == 401
    assert "WEBHOOK_API_KEYS" in also.json()["error"]
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "body is not valid JSON"),
        (
            json.dumps([shapes.alarm_event()]),
            "body must be a JSON object (one EventBridge event), not a list",
        ),
        (
            json.dumps({k: v for k, v in shapes.alarm_event().items() if k != "id"}),
            "missing field(s): id",
        ),
        (
            json.dumps({"id": "x"}),
            "missing field(s): source, detail-type, detail",
        ),
        (json.dumps({**shapes.alarm_event(), "id": ""}), "id must be a non-empty string"),
        (json.dumps({**shapes.alarm_event(), "detail": "text"}), "detail must be a JSON object"),
        (b"\xff\xfe{}", "body is not UTF-8 text"),
    ],
    ids=[
        "invalid-json",
        "array",
        "missing-id",
        "missing-several",
        "empty-id",
        "detail-not-object",
        "not-utf8",
    ],
)
def test_it_answers_400_naming_what_is_wrong_and_stores_nothing(post_event, raw, error):
    response = post_event(None, raw=raw)

    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert not InboundEvent.objects.exists()


def test_it_refuses_a_body_over_256_kib_with_413(post_event):
    event = shapes.alarm_event()
    event["detail"]["padding"] = "x" * (300 * 1024)

    response = post_event(event)

    assert response.status_code == 413
    assert "262144" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_it_refuses_a_big_body_sent_without_content_length(rf):
    """A chunked request declares no length: the body read is measured too."""
    import io

    from webhooks import views

    event = shapes.alarm_event()
    event["detail"]["padding"] = "x" * (300 * 1024)
    body = json.dumps(event).encode()
    request = rf.post(
        "/webhooks/eventbridge/",
        body,
        content_type="application/json",
        headers={"X-Api-Key": KEYS[0]},
    )
    del request.META["CONTENT_LENGTH"]
    request._stream = io.BytesIO(body)

    response = views.eventbridge(request)

    assert response.status_code == 413
    assert not InboundEvent.objects.exists()


def test_a_body_just_under_the_limit_is_accepted(post_event):
    event = shapes.alarm_event()
    event["detail"]["padding"] = ""
    size = len(json.dumps(event))
    event["detail"]["padding"] = "x" * (256 * 1024 - size)

    response = post_event(event)

    assert len(json.dumps(event)) == 256 * 1024
    assert response.status_code == 202


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_get_405(client, method):
    response = getattr(client, method)("/webhooks/eventbridge/", headers={"X-Api-Key": KEYS[0]})

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert not InboundEvent.objects.exists()


def test_the_same_event_delivered_three_times_is_stored_once_and_handled_once(post_event, handled):
    event = shapes.deregistration_event()

    answers = [post_event(event) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [202, 200, 200]
    assert answers[1].json() == answers[2].json() == {"status": "duplicate"}
    stored = InboundEvent.objects.get()
    assert stored.kind == registry.TASK_DEFINITION_DEREGISTERED
    assert stored.status == "processed"
    assert handled.event_ids == [stored.pk]


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (shapes.alarm_event(), registry.ALARM_STATE_CHANGE),
        (shapes.deregistration_event(), registry.TASK_DEFINITION_DEREGISTERED),
        (
            shapes.deregistration_event(event_name="DeleteTaskDefinitions"),
            registry.TASK_DEFINITION_DEREGISTERED,
        ),
        (shapes.deregistration_event(event_name="RegisterTaskDefinition"), registry.OTHER),
        (shapes.config_item_event(), registry.CONFIG_ITEM_CHANGE),
        (
            {"id": "e-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}},
            registry.OTHER,
        ),
    ],
    ids=["alarm", "deregister", "delete", "register-is-other", "config", "other"],
)
def test_it_classifies_events_by_kind_when_storing_them(post_event, event, kind):
    post_event(event)

    assert InboundEvent.objects.get().kind == kind


def test_the_webhook_needs_no_csrf_token_and_no_login():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/webhooks/eventbridge/",
        json.dumps(shapes.alarm_event()),
        content_type="application/json",
        headers={"X-Api-Key": KEYS[0]},
    )

    assert response.status_code == 202


def test_csrf_is_still_enforced_on_the_rest_of_the_console(admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post("/accounts/add/", {"account_id": "222222222222", "name": "prod"})

    assert response.status_code == 403
    from accounts.models import AwsAccount
    from audit.models import AuditEvent

    assert not AwsAccount.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="account.").exists()
