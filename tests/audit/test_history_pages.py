"""The audit history at scale and without dead ends: keyset pages, the action list read from a
cache, an invalid filter that keeps the others, targets that link to their pages."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

import audit
from audit.models import AuditEvent
from audit.views import ACTIONS_CACHE_KEY

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete(ACTIONS_CACHE_KEY)
    yield
    cache.delete(ACTIONS_CACHE_KEY)


def many(count: int, **fields) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            at=NOW - timedelta(seconds=n // 3),
            actor="worker",
            action="check.scheduled",
            target_label=f"row {n}",
            **fields,
        )
        for n in range(count)
    )


def labels(body: str) -> list[str]:
    return re.findall(r"row (\d+)", body)


def test_older_pages_walk_every_event_once_and_no_query_uses_offset(viewer_client):
    many(130)
    body = viewer_client.get("/audit/").content.decode()
    seen = labels(body)
    while 'id="pager-older"' in body:
        href = re.search(r'<a href="([^"]+)"[^>]*id="pager-older"', body)[1]
        with CaptureQueriesContext(connection) as queries:
            body = viewer_client.get("/audit/" + href.replace("&amp;", "&")).content.decode()
        assert not any("OFFSET" in q["sql"] for q in queries.captured_queries)
        seen += labels(body)
    # Newest first; three events share each second, the later row first.
    assert seen == [str(n) for n in sorted(range(130), key=lambda n: (n // 3, -n))]


def test_the_action_list_is_not_read_from_every_row_at_each_load(viewer_client):
    audit.record("ada", "account.added", at=NOW)
    audit.record("ada", "breaker.opened", at=NOW)
    first = viewer_client.get("/audit/").content.decode()
    assert '<option value="breaker.opened">' in first
    with CaptureQueriesContext(connection) as queries:
        viewer_client.get("/audit/")
    assert not any("DISTINCT" in q["sql"] for q in queries.captured_queries)


def test_an_action_filter_not_in_the_list_yet_stays_chosen(viewer_client):
    audit.record("ada", "account.added", at=NOW)
    viewer_client.get("/audit/")  # the list is cached without the next action
    audit.record("ada", "breaker.opened", at=NOW)
    body = viewer_client.get("/audit/?action=breaker.").content.decode()
    assert '<option value="breaker." selected>' in body
    assert "1 event," in body


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("account=12&actor=oscar", "Account: An account id has 12 digits."),
        ("since=banana&actor=oscar", "From: Enter a date as YYYY-MM-DD."),
        (
            "since=2026-11-05&until=2026-11-01&actor=oscar",
            "To: The end date is before the start date.",
        ),
    ],
)
def test_an_invalid_filter_keeps_the_others_and_says_which_it_is(viewer_client, query, says):
    audit.record("oscar", "check.approved", at=NOW)
    audit.record("ada", "check.approved", at=NOW)
    body = viewer_client.get(f"/audit/?{query}").content.decode()
    assert f"{says} This filter is not applied; the others are." in body
    assert "1 event," in body  # actor=oscar still applies
    assert 'value="oscar"' in body


def test_targets_link_to_their_pages_for_those_who_may_open_them(operator_client, viewer_client):
    from scenarios import pages

    built = pages.build(pages.Scale.small(), NOW)
    breaker, check = built.breakers[0], built.checks[0]
    repository = built.repositories[0]
    audit.record("ada", "breaker.opened", target_type="breaker", target_id=breaker.pk,
                 target_label=breaker.name, at=NOW + timedelta(hours=1))  # fmt: skip
    audit.record("ada", "check.approved", target_type="deletion_check", target_id=check.pk,
                 target_label="the check", at=NOW + timedelta(hours=1))  # fmt: skip
    audit.record("ada", "repository.opted_in", target_type="ecr_repository",
                 target_id=repository.arn, target_label=repository.name,
                 at=NOW + timedelta(hours=1))  # fmt: skip
    audit.record("ada", "webhook.reprocessed", target_type="inbound_event",
                 target_id=built.events[0].pk, target_label="an event",
                 at=NOW + timedelta(hours=1))  # fmt: skip
    body = operator_client.get("/audit/").content.decode()
    assert f'<a href="/breakers/{breaker.pk}/">{breaker.name}</a>' in body
    assert f'<a href="/checks/{check.pk}/">the check</a>' in body
    assert f'<a href="/repositories/{repository.pk}/">{repository.name}</a>' in body
    assert f'<a href="/inbox/{built.events[0].pk}/">an event</a>' in body
    # A viewer may not open the inbox: the target is named, not linked (no dead end).
    as_viewer = viewer_client.get("/audit/").content.decode()
    assert f'<a href="/inbox/{built.events[0].pk}/">' not in as_viewer
    assert "an event" in as_viewer
    assert f'<a href="/breakers/{breaker.pk}/">' in as_viewer


def test_the_export_streams_every_matching_row(viewer_client):
    many(2500)
    response = viewer_client.get("/audit/export.csv?actor=worker")
    assert response.streaming
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(table) == 2500
    # Pages of 1,000 cut through rows of one timestamp (three a second): none lost or repeated.
    assert sorted(row["target_label"] for row in table) == sorted(f"row {n}" for n in range(2500))
    times = [row["at"] for row in table]
    assert times == sorted(times, reverse=True)


def test_an_image_target_links_to_its_repository(viewer_client):
    from scenarios import pages

    built = pages.build(pages.Scale.small(), NOW)
    repository = built.repositories[1]
    audit.record("worker", "image.deleted", target_type="ecr_image",
                 target_id="sha256:" + "b" * 64, target_label=f"{repository.name}:v1@bbbbbbbbbbbb",
                 account_id=pages.REGISTRY, at=NOW + timedelta(hours=1))  # fmt: skip
    body = viewer_client.get("/audit/?action=image.deleted").content.decode()
    assert f'<a href="/repositories/{repository.pk}/">{repository.name}:v1@bbbbbbbbbbbb</a>' in body
