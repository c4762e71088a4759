"""/metrics: Prometheus text behind a bearer token, with request metrics and domain figures."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from breaker.models import Breaker
from cleanup import actions as cleanup_actions
from cleanup.models import DeletionCheck, Repository
from tests.observability.factories import NOW, awaiting_check
from webhooks.models import InboundEvent

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    figures = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            figures[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return figures


def figure(figures, name: str, **labels) -> float:
    return figures[(name, tuple(sorted(labels.items())))]


def test_without_the_token_it_is_401(db, client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_without_a_configured_token_it_does_not_exist(db, client, settings):
    settings.METRICS_TOKEN = None
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_with_the_token_it_shows_the_domain_figures(db, client):
    awaiting_check()
    InboundEvent.objects.create(
        source="sns", dedupe_key="m-1", raw_body="{}", received_at=NOW, status="failed"
    )

    figures = scrape(client)

    assert figure(figures, "console_cleanup_checks", status="awaiting_approval") == 1
    assert figure(figures, "console_cleanup_checks", status="deleted") == 0
    assert figure(figures, "console_cleanup_reclaimed_bytes_total") == 0
    assert figure(figures, "console_inbox_events", status="failed") == 1
    assert figure(figures, "console_inbox_events", status="processed") == 0
    assert figure(figures, "console_breakers", state="open") == 0
    assert figure(figures, "console_breaker_probes_total", outcome="passed") == 0
    assert figure(figures, "console_worker_queue_length") == 0
    assert figure(figures, "console_worker_last_task_finished_timestamp_seconds") == 0


def test_approving_a_check_moves_the_matching_figures(db, client):
    check = awaiting_check()
    before = scrape(client)

    cleanup_actions.do_approve_checks([check.pk], actor="oscar", now=NOW)

    after = scrape(client)
    assert figure(before, "console_cleanup_checks", status="approved") == 0
    assert figure(after, "console_cleanup_checks", status="approved") == 1
    assert figure(after, "console_cleanup_checks", status="awaiting_approval") == 0
    assert (
        figure(after, "console_audit_events_total", action="check.approved")
        == before.get(("console_audit_events_total", (("action", "check.approved"),)), 0) + 1
    )


def test_bytes_reclaimed_and_breaker_states_are_counted(db, client):
    check = awaiting_check()
    DeletionCheck.objects.filter(pk=check.pk).update(status="deleted", bytes_reclaimed=5_000)
    # A deletion counts its bytes on its repository: the one figure the dashboard and CLI read.
    Repository.objects.filter(pk=check.image.repository_id).update(bytes_reclaimed=5_000)
    Breaker.objects.create(
        name="orders",
        account=check.image.repository.account,
        region="eu-west-1",
        function_name="orders",
        mapping_uuid="0" * 36,
        queue_arn="arn:aws:sqs:eu-west-1:111111111111:orders",
        queue_url="https://sqs.eu-west-1.amazonaws.com/111111111111/orders",
        state=Breaker.State.OPEN,
    )

    figures = scrape(client)

    assert figure(figures, "console_cleanup_reclaimed_bytes_total") == 5_000
    assert figure(figures, "console_breakers", state="open") == 1
    assert figure(figures, "console_breakers", state="closed") == 0


def test_requests_are_counted_by_view_and_status(db, client, viewer_client):
    viewer_client.get("/audit/")
    viewer_client.get("/audit/")
    client.get("/healthz")

    figures = scrape(client)

    assert (
        figure(
            figures, "console_http_requests_total", method="GET", view="audit:list", status="200"
        )
        >= 2
    )
    assert (
        figure(figures, "console_http_request_duration_seconds_count", method="GET", view="healthz")
        >= 1
    )
