"""The breaker pages: what each role sees and may do, live refresh, the add form."""

from __future__ import annotations

import re

from django.test import TestCase

from audit.models import AuditEvent
from breaker import actions
from breaker.models import Breaker, BreakerTransition, Probe
from tests.breaker.conftest import REGION, build_function
from tests.conftest import rows

HTMX = {"HX-Request": "true"}


def test_the_list_shows_state_alarm_and_mapping(viewer_client, breaker):
    response = viewer_client.get("/breakers/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "orders" in body
    assert 'data-state="closed"' in body
    assert "Enabled" in body


def test_the_list_polls_while_a_breaker_is_not_closed(viewer_client, breaker):
    actions.do_trip(breaker, actor="oscar", reason="maintenance")

    page = viewer_client.get("/breakers/").content.decode()
    poll = viewer_client.get("/breakers/", headers={**HTMX, "HX-Target": "breakers"})

    assert 'hx-trigger="every 5s"' in page
    assert poll.status_code == 200
    assert 'data-state="open"' in poll.content.decode()


def shown_version(body: str) -> str:
    found = re.search(r'hx-get="[^"]*[?&](?:amp;)?v=([0-9a-f]+)"', body)
    assert found, body[:2000]
    return found.group(1)


def test_the_list_polls_cheaply_and_redraws_after_a_trip_made_elsewhere(viewer_client, breaker):
    """Every breaker closed, the list still polls (a trip from the CLI must show), but an
    unchanged table costs a 204 and no redraw."""
    page = viewer_client.get("/breakers/").content.decode()
    version = shown_version(page)
    poll = {"headers": {**HTMX, "HX-Target": "breakers"}}

    assert viewer_client.get(f"/breakers/?v={version}", **poll).status_code == 204

    actions.do_trip(breaker, actor="cli:root", reason="maintenance")
    redrawn = viewer_client.get(f"/breakers/?v={version}", **poll)

    assert redrawn.status_code == 200
    assert 'data-state="open"' in redrawn.content.decode()
    assert shown_version(redrawn.content.decode()) != version


def test_the_breaker_page_shows_settings_history_and_probes(operator_client, breaker, function):
    actions.do_trip(breaker, actor="oscar", reason="downstream maintenance")

    body = operator_client.get(f"/breakers/{breaker.pk}/").content.decode()

    assert "downstream maintenance" in body
    assert "by oscar" in body
    assert "Successes to close" in body
    assert "No probe yet" in body


def run_after_commit(callbacks) -> None:
    """The work handed off on commit; with the test settings' synchronous queue this runs the
    worker's task here, as the worker would."""
    for callback in callbacks:
        callback()


def test_an_operator_trips_with_a_reason_and_resets_and_the_worker_moves_the_mapping(
    operator_client, breaker, function
):
    with TestCase.captureOnCommitCallbacks() as handed_off:
        tripped = operator_client.post(
            f"/breakers/{breaker.pk}/trip/", {"reason": "bad deploy"}, headers=HTMX
        )
    breaker.refresh_from_db()
    assert tripped.status_code == 200
    assert (breaker.state, breaker.mode) == ("open", "forced_open")
    assert function.mapping_state() == "Enabled"  # the request did not wait on AWS
    assert 'data-state="open"' in tripped.content.decode()
    assert "disabling the mapping…" in tripped.content.decode()
    assert AuditEvent.objects.filter(action="breaker.tripped", actor="oscar").exists()
    run_after_commit(handed_off)  # what the worker does once the trip is committed
    assert function.mapping_state() == "Disabled"

    with TestCase.captureOnCommitCallbacks() as handed_off:
        reset = operator_client.post(f"/breakers/{breaker.pk}/reset/")
    breaker.refresh_from_db()
    assert reset.status_code == 302
    assert breaker.state == "closed"
    assert function.mapping_state() == "Disabled"
    run_after_commit(handed_off)
    assert function.mapping_state() == "Enabled"
    version = shown_version(operator_client.get(f"/breakers/{breaker.pk}/").content.decode())
    panel = operator_client.get(
        f"/breakers/{breaker.pk}/?v={version}", headers={**HTMX, "HX-Target": "breaker-panel"}
    )
    assert panel.status_code == 204  # settled: nothing new to draw until something changes


def test_a_trip_without_a_reason_changes_nothing(operator_client, breaker, function):
    response = operator_client.post(f"/breakers/{breaker.pk}/trip/", {"reason": "  "}, headers=HTMX)

    breaker.refresh_from_db()
    assert "Say why" in response.content.decode()
    assert breaker.state == "closed"
    assert function.mapping_state() == "Enabled"


def test_a_viewer_sees_no_buttons_and_a_forged_post_gets_403(viewer_client, breaker, function):
    body = viewer_client.get(f"/breakers/{breaker.pk}/").content.decode()
    assert "Trip</button>" not in body
    assert "Reset</button>" not in body
    function.set_mapping(False)  # a reset would enable it again
    function.send("order-1")  # and a probe would take this message through the function
    before = rows(Breaker, BreakerTransition, Probe, AuditEvent)

    for action in ("trip", "reset", "probe", "manage"):
        assert (
            viewer_client.post(f"/breakers/{breaker.pk}/{action}/", {"reason": "x"}).status_code
            == 403
        )
    assert rows(Breaker, BreakerTransition, Probe, AuditEvent) == before
    assert function.mapping_state() == "Disabled"
    assert function.visible() == 1
    assert function.received == []


def test_someone_without_a_role_cannot_see_breakers(outsider_client, breaker):
    for url in ("/breakers/", f"/breakers/{breaker.pk}/"):
        response = outsider_client.get(url)
        assert response.status_code == 403
        assert breaker.function_name not in response.content.decode()


def test_probe_now_half_opens_an_open_breaker_and_probes(operator_client, breaker, function):
    function.set_mapping(False)
    Breaker.objects.filter(pk=breaker.pk).update(state="open")
    function.send("order-1")

    with TestCase.captureOnCommitCallbacks() as handed_off:
        response = operator_client.post(f"/breakers/{breaker.pk}/probe/", headers=HTMX)

    assert "Probe requested" in response.content.decode()
    assert not breaker.probes.exists() and function.queued() == 1  # not in the request
    run_after_commit(handed_off)
    assert breaker.probes.get().actor == "oscar"
    assert breaker.probes.get().outcome == "passed"
    assert function.queued() == 0


def test_management_can_be_turned_off_and_on(operator_client, breaker):
    operator_client.post(f"/breakers/{breaker.pk}/manage/", {"managed": "off"})
    breaker.refresh_from_db()
    assert breaker.mode == "disabled"

    operator_client.post(f"/breakers/{breaker.pk}/manage/", {"managed": "on"})
    breaker.refresh_from_db()
    assert breaker.mode == "auto"
    assert AuditEvent.objects.filter(action__startswith="breaker.management_").count() == 2


def test_an_admin_edits_settings_and_the_change_is_audited(admin_client, breaker):
    response = admin_client.post(
        f"/breakers/{breaker.pk}/edit/",
        {
            "alarms": "\n".join(breaker.alarms),
            "successes_to_close": 5,
            "probe_interval_seconds": 10,
            "backoff_seconds": 30,
            "backoff_cap_seconds": 600,
            "close_when_queue_empty": "",
        },
    )

    breaker.refresh_from_db()
    assert response.status_code == 302
    assert (
        breaker.successes_to_close,
        breaker.backoff_cap_seconds,
        breaker.close_when_queue_empty,
    ) == (5, 600, False)
    event = AuditEvent.objects.get(action="breaker.settings_changed")
    assert event.details["successes_to_close"] == {"from": 3, "to": 5}


def test_an_operator_cannot_edit_settings(operator_client, breaker):
    before = rows(Breaker, AuditEvent)

    assert operator_client.get(f"/breakers/{breaker.pk}/edit/").status_code == 403
    forged = operator_client.post(
        f"/breakers/{breaker.pk}/edit/",
        {
            "alarms": "\n".join(breaker.alarms),
            "successes_to_close": 5,
            "probe_interval_seconds": 10,
            "backoff_seconds": 30,
            "backoff_cap_seconds": 600,
            "close_when_queue_empty": "",
        },
    )

    assert forged.status_code == 403
    assert rows(Breaker, AuditEvent) == before


def test_the_add_form_lists_the_functions_with_sqs_mappings_and_the_alarms(admin_client, function):
    response = admin_client.get(
        "/breakers/add/",
        {"account": function.account.pk, "region": REGION},
        headers={**HTMX, "HX-Target": "choices"},
    )

    body = response.content.decode()
    assert function.mapping_uuid in body
    assert "orders-worker ← orders-worker-queue" in body
    assert function.alarm_arn in body


def test_an_admin_adds_a_breaker_by_choosing_never_typing_a_uuid(admin_client, production):
    created = build_function(production, name="billing-worker")

    response = admin_client.post(
        "/breakers/add/",
        {
            "account": production.pk,
            "region": REGION,
            "name": "billing",
            "mapping": created.mapping_uuid,
            "alarms": [created.alarm_arn],
            "successes_to_close": 3,
            "probe_interval_seconds": 30,
            "backoff_seconds": 60,
            "backoff_cap_seconds": 900,
            "close_when_queue_empty": "on",
        },
    )

    assert response.status_code == 302
    breaker = Breaker.objects.get(name="billing")
    assert (breaker.function_name, breaker.mapping_uuid) == (
        "billing-worker",
        created.mapping_uuid,
    )
    assert breaker.queue_url.endswith("billing-worker-queue")
    assert AuditEvent.objects.filter(action="breaker.added", actor="ada").exists()


def test_an_operator_cannot_add_breakers(operator_client, function):
    before = rows(Breaker, AuditEvent)

    assert operator_client.get("/breakers/add/").status_code == 403
    forged = operator_client.post(
        "/breakers/add/",
        {
            "account": function.account.pk,
            "region": REGION,
            "name": "orders",
            "mapping": function.mapping_uuid,
            "alarms": [function.alarm_arn],
            "successes_to_close": 3,
            "probe_interval_seconds": 30,
            "backoff_seconds": 60,
            "backoff_cap_seconds": 900,
        },
    )

    assert forged.status_code == 403
    assert rows(Breaker, AuditEvent) == before
    assert function.mapping_state() == "Enabled"


def test_the_dashboard_tile_lists_open_breakers_first(viewer_client, breaker, function):
    actions.do_trip(breaker, actor="oscar", reason="maintenance")

    body = viewer_client.get("/").content.decode()

    assert "Circuit breakers" in body
    assert "of 1 breaker not closed" in body
