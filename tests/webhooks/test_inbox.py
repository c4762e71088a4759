"""The inbox pages: who sees them, filters, the event page, re-processing by hand, the tile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.html import escape

from audit.models import AuditEvent
from console import clock
from tests.conftest import rows
from tests.webhooks import shapes
from tests.webhooks.signing import after_commit
from webhooks import actions, registry
from webhooks.models import MAX_ATTEMPTS, InboundEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_event(post_event):
    def broken(event):
        raise RuntimeError("throttled by ECS")

    with registry.override(registry.TASK_DEFINITION_DEREGISTERED, broken):
        post_event(shapes.deregistration_event())
        now = clock.now()
        for _ in range(MAX_ATTEMPTS):
            now += timedelta(hours=2)
            actions.do_process_pending(now=now)
    event = InboundEvent.objects.get(kind=registry.TASK_DEFINITION_DEREGISTERED)
    assert event.status == "failed"
    return event


def test_a_viewer_may_not_see_the_inbox(viewer_client, post_event):
    post_event(shapes.alarm_event())
    event = InboundEvent.objects.get()

    for url in ("/inbox/", f"/inbox/{event.pk}/"):
        response = viewer_client.get(url)
        assert response.status_code == 403
        assert escape(event.summary) not in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/inbox/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_operator_sees_events_newest_first(operator_client, post_event):
    post_event(shapes.alarm_event(alarm="older-alarm"))
    InboundEvent.objects.update(received_at=clock.now() - timedelta(minutes=5))
    post_event(shapes.alarm_event(alarm="newer-alarm"))

    page = operator_client.get("/inbox/").content.decode()

    assert page.index("newer-alarm") < page.index("older-alarm")


def test_filters_narrow_the_list_and_htmx_gets_only_the_results(
    operator_client, post_event, sns_signer, client
):
    post_event(shapes.alarm_event(alarm="bridge-alarm"))
    post_event(shapes.deregistration_event("billing:3"))
    sns_signer.post(client, sns_signer.notification(shapes.alarm_notification(alarm="sns-alarm")))

    by_source = operator_client.get("/inbox/", {"source": "sns"}).content.decode()
    by_kind = operator_client.get(
        "/inbox/", {"kind": registry.TASK_DEFINITION_DEREGISTERED}
    ).content.decode()
    partial = operator_client.get(
        "/inbox/", {"source": "eventbridge"}, headers={"HX-Request": "true"}
    )

    assert "sns-alarm" in by_source and "bridge-alarm" not in by_source
    assert "billing:3" in by_kind and "sns-alarm" not in by_kind
    html = partial.content.decode()
    assert "<html" not in html and 'id="results"' in html
    assert "bridge-alarm" in html and "sns-alarm" not in html


def test_the_status_filter_and_unknown_values(operator_client, failed_event, post_event):
    post_event(shapes.alarm_event(alarm="fine-alarm"))

    failed = operator_client.get("/inbox/", {"status": "failed"}).content.decode()
    bogus = operator_client.get("/inbox/", {"status": "nonsense"})

    assert "billing" not in failed and "orders:7" in failed and "fine-alarm" not in failed
    assert bogus.status_code == 200 and "fine-alarm" in bogus.content.decode()


def test_the_event_page_shows_the_raw_body_pretty_printed_and_what_happened(
    operator_client, failed_event
):
    page = operator_client.get(f"/inbox/{failed_event.pk}/").content.decode()

    assert "&quot;eventName&quot;: &quot;DeregisterTaskDefinition&quot;" in page
    assert "\n  &quot;detail&quot;: {" in page  # indented
    assert "RuntimeError: throttled by ECS" in page
    assert "Re-process" not in page  # operators may not


def test_an_sns_alarm_message_is_shown_parsed_inside_its_envelope(
    operator_client, sns_signer, client
):
    sns_signer.post(client, sns_signer.notification(shapes.alarm_notification()))
    event = InboundEvent.objects.get()

    page = operator_client.get(f"/inbox/{event.pk}/").content.decode()

    assert "&quot;NewStateValue&quot;: &quot;ALARM&quot;" in page


def test_an_admin_reprocesses_a_failed_event(admin_client, failed_event, handled):
    page = admin_client.get(f"/inbox/{failed_event.pk}/").content.decode()
    assert "Re-process" in page

    with after_commit():
        response = admin_client.post(f"/inbox/{failed_event.pk}/reprocess/")

    assert response.status_code == 302
    failed_event.refresh_from_db()
    assert failed_event.status == "processed"
    assert failed_event.attempts == 1
    assert handled.event_ids == [failed_event.pk]
    entry = AuditEvent.objects.get(action="webhook.reprocessed")
    assert (entry.actor, entry.target_id) == ("ada", str(failed_event.pk))


def test_reprocess_with_htmx_answers_the_outcome_fragment(admin_client, failed_event):
    with after_commit():
        response = admin_client.post(
            f"/inbox/{failed_event.pk}/reprocess/", headers={"HX-Request": "true"}
        )

    html = response.content.decode()
    assert 'id="event-outcome"' in html and "<html" not in html


def test_an_operator_may_not_reprocess(operator_client, failed_event, handled):
    before = rows(InboundEvent, AuditEvent)

    with after_commit():
        response = operator_client.post(f"/inbox/{failed_event.pk}/reprocess/")

    assert response.status_code == 403
    failed_event.refresh_from_db()
    assert failed_event.status == "failed"
    assert not AuditEvent.objects.filter(action="webhook.reprocessed").exists()
    assert rows(InboundEvent, AuditEvent) == before
    assert handled.calls == []


def test_only_failed_events_can_be_reprocessed(admin_client, post_event):
    post_event(shapes.alarm_event())
    event = InboundEvent.objects.get()

    admin_client.post(f"/inbox/{event.pk}/reprocess/")

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 1)
    assert not AuditEvent.objects.filter(action="webhook.reprocessed").exists()


def test_the_dashboard_tile_counts_the_last_hour_and_calls_for_attention_on_failures(
    rf, operator_user, viewer_user, failed_event, post_event
):
    from django.template.loader import render_to_string

    from console import dashboard
    from webhooks.tiles import inbox_tile

    post_event(shapes.alarm_event())
    InboundEvent.objects.filter(kind=registry.ALARM_STATE_CHANGE).update(
        received_at=clock.now() - timedelta(hours=2)
    )
    post_event(shapes.alarm_event())
    request = rf.get("/")
    request.user = operator_user

    tile = inbox_tile(request)

    assert inbox_tile in dashboard._providers
    assert tile.context["last_hour"] == 2  # the failed one and the fresh alarm
    assert tile.context["failed"] == 1
    assert tile.attention
    html = render_to_string(tile.template, {"tile": tile})
    assert "1 failed" in html and "?status=failed" in html
    request.user = viewer_user
    assert inbox_tile(request) is None
