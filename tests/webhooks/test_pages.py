"""The inbox pages: keyset pages that cost the same at any depth, notes in words, one time format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webhooks import notes
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def make_events(count: int, **fields) -> list[InboundEvent]:
    fields.setdefault("status", "processed")
    return InboundEvent.objects.bulk_create(
        InboundEvent(
            source="eventbridge",
            dedupe_key=f"evt-{n:04d}",
            raw_body="{}",
            received_at=NOW - timedelta(minutes=n // 2),  # pairs share a time: ties broken by id
            summary=f"event number {n}",
            **fields,
        )
        for n in range(count)
    )


def newest_first(count: int) -> list[str]:
    """Event numbers newest first: by time, then (two share a time) the later row first."""
    return [str(n) for n in sorted(range(count), key=lambda n: (n // 2, -n))]


def shown(body: str) -> list[str]:
    return re.findall(r"event number (\d+)", body)


def follow(client, link_id: str, body: str) -> str:
    href = re.search(rf'<a href="([^"]+)"[^>]*id="{link_id}"', body)[1].replace("&amp;", "&")
    return client.get("/inbox/" + href).content.decode()


def test_older_and_newer_pages_walk_every_event_once_in_order(operator_client):
    make_events(120)
    body = operator_client.get("/inbox/").content.decode()
    seen = shown(body)
    pages = [body]
    while 'id="pager-older"' in body:
        body = follow(operator_client, "pager-older", body)
        pages.append(body)
        seen += shown(body)
    assert seen == newest_first(120)
    assert len(pages) == 3
    assert "120 events, newest first" in pages[0]
    back = follow(operator_client, "pager-newer", pages[2])
    assert shown(back) == newest_first(120)[50:100]


def test_a_deep_page_costs_the_same_queries_as_the_first(operator_client):
    make_events(300)
    with CaptureQueriesContext(connection) as first:
        body = operator_client.get("/inbox/").content.decode()
    for _ in range(4):
        body = follow(operator_client, "pager-older", body)
    with CaptureQueriesContext(connection) as deep:
        follow(operator_client, "pager-older", body)
    assert len(deep) == len(first)
    assert not any("OFFSET" in query["sql"] for query in deep.captured_queries)


def test_filters_stay_on_the_pager_links(operator_client):
    make_events(60, kind="alarm_state_change")
    body = operator_client.get("/inbox/?kind=alarm_state_change").content.decode()
    href = re.search(r'<a href="([^"]+)"[^>]*id="pager-older"', body)[1]
    assert "kind=alarm_state_change" in href


def test_a_malformed_cursor_shows_the_first_page(operator_client):
    make_events(3)
    response = operator_client.get("/inbox/?older=banana_12")
    assert response.status_code == 200
    assert shown(response.content.decode()) == newest_first(3)


@pytest.mark.parametrize(
    ("note", "words"),
    [
        (
            "malformed alarm state change: KeyError 'timestamp'",
            "the alarm event has no timestamp field",
        ),
        (
            "malformed alarm state change: ValueError timestamp without a time zone: 2026-11-30",
            "the alarm event's time has no time zone",
        ),
        ("no handler for kind other", "the console does not act on other events"),
        ("KeyError: 'detail'", "the event has no detail field"),
        ("no breaker watches alarm x in 1 eu-west-1", "no breaker watches alarm x in 1 eu-west-1"),
    ],
)
def test_notes_read_as_words(note, words):
    assert notes.in_words(note) == words


def test_the_inbox_and_the_event_page_show_notes_in_words_with_the_original_kept(operator_client):
    (event,) = make_events(
        1, status="ignored", note="malformed alarm state change: KeyError 'timestamp'"
    )
    inbox = operator_client.get("/inbox/").content.decode()
    assert "the alarm event has no timestamp field" in inbox
    assert 'title="malformed alarm state change: KeyError &#x27;timestamp&#x27;"' in inbox
    page = operator_client.get(f"/inbox/{event.pk}/").content.decode()
    assert "the alarm event has no timestamp field" in page
    assert "KeyError" in page  # small print, for searching


def test_times_are_written_once_in_utc_with_the_zone(operator_client):
    (event,) = make_events(1)
    inbox = operator_client.get("/inbox/").content.decode()
    assert '<time datetime="2026-11-30T08:00:00+00:00"' in inbox
    assert ">2026-11-30 08:00 UTC</time>" in inbox
    page = operator_client.get(f"/inbox/{event.pk}/").content.decode()
    assert ">2026-11-30 08:00 UTC</time>" in page


def test_a_viewer_does_not_see_the_inbox_in_the_navigation(viewer_client):
    assert ">Inbox</a>" not in viewer_client.get("/").content.decode()
    assert viewer_client.get("/inbox/").status_code == 403


def test_an_event_still_owed_processing_refreshes_its_outcome_until_final(operator_client):
    (event,) = make_events(1, status="received")
    page = operator_client.get(f"/inbox/{event.pk}/").content.decode()
    assert 'hx-trigger="every 3s"' in page
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "event-outcome"}
    waiting = operator_client.get(f"/inbox/{event.pk}/", **headers)
    assert waiting.status_code == 200
    assert 'id="event-outcome"' in waiting.content.decode()
    InboundEvent.objects.filter(pk=event.pk).update(status="processed", note="breaker opened")
    final = operator_client.get(f"/inbox/{event.pk}/", **headers)
    assert final.status_code == 286  # htmx stops polling
    assert "processed" in final.content.decode()
    assert 'hx-trigger="every 3s"' not in final.content.decode()
