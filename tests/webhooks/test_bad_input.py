"""No body makes a door answer 5xx: whatever its depth, size or characters, a body the console
cannot store is a 400 naming the problem, and nothing is stored. The only 5xx is a database that
cannot store right now (a JSON 503, so the sender delivers again)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.db import DatabaseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhooks import shapes
from tests.webhooks.conftest import KEYS
from webhooks import actions
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


def refused_with(response, status: int, words: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"]
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize("depth", [65, 40_000, 100_000])
def test_a_body_nested_deeper_than_any_aws_event_is_refused(post_event, depth):
    event = shapes.alarm_event()
    deep = "[" * depth + "]" * depth
    raw = json.dumps(event)[:-1] + f', "extra": {deep}}}'

    refused_with(post_event(None, raw=raw), 400, "nests deeper than 64 levels")


def test_an_event_as_deep_as_the_limit_is_accepted(post_event):
    event = shapes.alarm_event()
    raw = json.dumps(event)[:-1] + ', "extra": ' + "[" * 60 + "]" * 60 + "}"

    assert post_event(None, raw=raw).status_code == 202


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda e: e.update(id="abc\u0000def"), "id contains a NUL character"),
        (lambda e: e["detail"].update(alarmName="x\u0000y"), "alarmName contains a NUL"),
        (lambda e: e["detail"].update(alarmName="\ud800"), "lone UTF-16 surrogate"),
        (lambda e: e.update({"detail-type": "x" * 300}), "detail-type must be at most 200"),
        (lambda e: e["detail"].update({"\u0000key": 1}), "a key in detail contains a NUL"),
    ],
)
def test_a_string_the_database_cannot_store_is_refused_naming_the_field(post_event, change, words):
    event = shapes.alarm_event()
    change(event)
    raw = json.dumps(event)  # ensure_ascii: NUL and surrogates travel as \u escapes, as JSON allows

    refused_with(post_event(None, raw=raw), 400, words)


def test_a_raw_nul_byte_in_the_body_is_refused(post_event):
    raw = json.dumps(shapes.alarm_event()).replace("CloudWatch", "Cloud\x00Watch", 1)

    refused_with(post_event(None, raw=raw), 400, "NUL")


def test_a_chunked_body_without_content_length_is_refused_with_411(client):
    # Django reads a body without Content-Length as empty: refuse it instead of misreading it.
    body = json.dumps(shapes.alarm_event()).encode()
    response = client.generic(
        "POST",
        "/webhooks/eventbridge/",
        body,
        content_type="application/json",
        headers={"X-Api-Key": KEYS[0], "Transfer-Encoding": "chunked"},
        CONTENT_LENGTH="",
    )

    refused_with(response, 411, "Content-Length")


def test_a_database_that_cannot_store_answers_503_in_json_so_the_sender_retries(post_event):
    with mock.patch.object(
        actions.InboundEvent, "save", side_effect=DatabaseError("connection refused")
    ):
        response = post_event(shapes.alarm_event())

    assert response.status_code == 503
    assert "deliver again later" in response.json()["error"]
    assert "connection refused" not in response.content.decode()


def test_an_sns_message_whose_inner_message_cannot_be_stored_is_kept_as_text(client, sns_signer):
    inner = json.dumps({"AlarmName": "a\u0000b", "NewStateValue": "ALARM"})
    message = sns_signer.notification(inner)

    response = sns_signer.post(client, message)

    assert response.status_code == 202
    stored = InboundEvent.objects.get()
    assert "\x00" not in stored.summary
    assert stored.kind == "other"


def test_an_sns_message_id_longer_than_the_column_is_refused(client, sns_signer):
    message = sns_signer.notification("hello", message_id="m" * 300)

    refused_with(sns_signer.post(client, message), 400, "MessageId must be at most 255")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda event, extra: json.dumps({**event, **extra}).encode(),
            st.just(shapes.alarm_event()),
            st.dictionaries(
                st.sampled_from(["id", "detail-type", "source", "detail"]), json_values
            ),
        ),
        st.binary(max_size=300),
    ),
    door=st.sampled_from(["/webhooks/eventbridge/", "/webhooks/sns/"]),
)
def test_no_body_makes_a_door_answer_5xx_and_a_refused_body_stores_nothing(client, body, door):
    before = InboundEvent.objects.count()

    response = client.post(
        door, body, content_type="application/json", headers={"X-Api-Key": KEYS[0]}
    )

    assert response.status_code < 500, (response.status_code, body[:200])
    assert response["Content-Type"] == "application/json"
    stored = InboundEvent.objects.count() - before
    assert stored == (1 if response.status_code == 202 else 0)
