"""The audit history page: newest first, filters in the URL, htmx partials, CSV export."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

import audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    audit.record(
        "ada",
        "account.added",
        account_id="222222222222",
        at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
    )
    audit.record(
        "cli:root",
        "account.verified",
        account_id="222222222222",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    audit.record(
        "oscar",
        "account.verified",
        account_id="333333333333",
        at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
    )


def rows(response) -> list[str]:
    body = response.content.decode()
    return [line.strip() for line in body.splitlines() if '<td class="mono nowrap">' in line]


def test_newest_first(viewer_client, history):
    page = rows(viewer_client.get("/audit/?action=account."))
    shown = [re.search(r">(\d{4}-[^<]+)</time>", line)[1] for line in page[:3]]
    assert shown == ["2026-11-03 09:00 UTC", "2026-11-02 09:00 UTC", "2026-11-01 09:00 UTC"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=account.verified", 2),
        ("actor=cli:", 1),
        ("account=333333333333", 1),
        ("since=2026-11-02&until=2026-11-02", 1),
        ("since=2026-11-02&action=account.", 2),
        ("action=account.verified&account=222222222222", 1),
    ],
)
def test_filters(viewer_client, history, query, expected):
    assert len(rows(viewer_client.get(f"/audit/?{query}"))) == expected


def test_htmx_requests_get_only_the_results(viewer_client, history):
    response = viewer_client.get("/audit/?actor=oscar", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results">')
    assert "<nav" not in body.split('<div id="results">')[0]
    assert len(rows(response)) == 1


def test_an_invalid_filter_says_what_is_wrong(viewer_client, history):
    body = viewer_client.get("/audit/?account=12").content.decode()
    assert "An account id has 12 digits." in body


def test_csv_export_has_the_filtered_rows(viewer_client, history):
    response = viewer_client.get("/audit/export.csv?action=account.verified")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["actor"], row["account_id"]) for row in table] == [
        ("oscar", "333333333333"),
        ("cli:root", "222222222222"),
    ]


def test_sign_in_failures_are_recorded():
    Client().post("/login/", {"username": "mallory", "password": "guess"})
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor == "mallory"
    assert "guess" not in str(event.details)


def test_users_without_a_role_cannot_read_history(outsider_client, history):
    for url in ("/audit/", "/audit/export.csv"):
        response = outsider_client.get(url)
        assert response.status_code == 403
        body = response.content.decode()
        assert "333333333333" not in body and "cli:root" not in body


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(viewer_client, start):
    audit.record(f'{start}HYPERLINK("http://evil")', "account.added", target_label=f"{start}1+1")

    response = viewer_client.get("/audit/export.csv")

    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0]["actor"] == f'\'{start}HYPERLINK("http://evil")'
    assert table[0]["target_label"] == f"'{start}1+1"
