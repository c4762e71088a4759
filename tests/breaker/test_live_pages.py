"""The breaker page an operator can trust at a glance: it notices a change made elsewhere within
its polling interval (in every state, cheaply), draws the last 24 h / 7 d as an SVG with a text
alternative, asks once before a trip or a reset saying what will happen, and names things in
words (code names in titles). Also the two queries the dashboard calls."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from breaker import actions, charts, timeline
from breaker.models import Breaker, BreakerTransition, Probe
from tests.breaker.conftest import NOW

HTMX_PANEL = {"HX-Request": "true", "HX-Target": "breaker-panel"}


def version_of(body: str) -> str:
    found = re.search(r'data-version="([0-9a-f]+)"', body)
    assert found, body[:1500]
    return found.group(1)


def poll(client, breaker: Breaker, version: str):
    return client.get(f"/breakers/{breaker.pk}/?window=24h&v={version}", headers=HTMX_PANEL)


def test_a_closed_breaker_page_still_polls_and_sees_a_trip_made_with_the_cli(
    viewer_client, breaker, django_assert_max_num_queries
):
    page = viewer_client.get(f"/breakers/{breaker.pk}/").content.decode()
    version = version_of(page)
    assert 'hx-trigger="every 5s"' in page  # closed, settled: polling all the same

    with django_assert_max_num_queries(6):  # session, user, permissions, the breaker row
        unchanged = poll(viewer_client, breaker, version)
    assert unchanged.status_code == 204
    assert unchanged.content == b""

    actions.do_trip(breaker, actor="cli:root", reason="database failover")  # another process
    changed = poll(viewer_client, breaker, version)

    body = changed.content.decode()
    assert changed.status_code == 200
    assert 'data-state="open"' in body
    assert "database failover" in body
    assert version_of(body) != version
    assert poll(viewer_client, breaker, version_of(body)).status_code == 204


def test_a_new_probe_alone_redraws_the_panel(viewer_client, breaker):
    version = version_of(viewer_client.get(f"/breakers/{breaker.pk}/").content.decode())
    Probe.objects.create(breaker=breaker, at=NOW, outcome=Probe.Outcome.NO_MESSAGE)

    assert poll(viewer_client, breaker, version).status_code == 200


def test_trip_and_reset_ask_once_saying_what_happens_to_the_function(operator_client, breaker):
    body = operator_client.get(f"/breakers/{breaker.pk}/").content.decode()
    trip = re.search(r'<form[^>]*/trip/"[^>]*hx-confirm="([^"]+)"', body)

    assert trip, "the trip form asks for confirmation"
    assert f"disables the mapping of function {breaker.function_name}" in trip.group(1)
    assert "messages wait in the queue" in trip.group(1)
    assert body.count("hx-confirm=") == 1  # closed and automatic: no reset offered

    actions.do_trip(breaker, actor="oscar", reason="maintenance")
    body = operator_client.get(f"/breakers/{breaker.pk}/").content.decode()
    reset = re.search(r'<form[^>]*/reset/"[^>]*hx-confirm="([^"]+)"', body)

    assert reset, "the reset form asks for confirmation"
    assert f"enables the mapping of function {breaker.function_name}" in reset.group(1)
    assert "/trip/" not in body  # already tripped


def test_labels_name_the_breaker_and_states_and_causes_read_as_words(operator_client, breaker):
    actions.do_trip(breaker, actor="oscar", reason="maintenance")

    body = operator_client.get(f"/breakers/{breaker.pk}/").content.decode()

    assert f'Reset<span class="visually-hidden"> {breaker.name}</span>' in body
    assert '<span class="badge" title="manual">by hand</span>' in body
    assert 'title="forced_open">tripped by hand</span>' in body
    assert 'data-state="open" title="open">open</span>' in body


def test_a_ramping_breaker_shows_its_step_in_words(viewer_client, breaker):
    Breaker.objects.filter(pk=breaker.pk).update(
        gradual_close=True,
        state=Breaker.State.RAMPING,
        ramp_step=1,
        ramp_step_since=NOW,
        original_scaling={},
        mapping_max_concurrency=5,
    )

    body = viewer_client.get(f"/breakers/{breaker.pk}/").content.decode()

    assert 'title="ramping">closing gradually</span>' in body
    assert "step 2 of 4: at most 5 at once" in body
    assert "then no limit" in body


def transition(breaker, at, to, cause="alarm", actor="worker", from_state=None):
    BreakerTransition.objects.create(
        breaker=breaker,
        from_state=from_state or Breaker.State.CLOSED,
        to_state=to,
        cause=cause,
        actor=actor,
        at=at,
    )


def test_the_timeline_draws_each_state_over_the_day_with_probes_and_manual_actions(breaker):
    transition(breaker, NOW - timedelta(days=3), "open")  # before the window: it starts open
    transition(breaker, NOW - timedelta(hours=18), "half_open", "timer", from_state="open")
    Probe.objects.create(breaker=breaker, at=NOW - timedelta(hours=17), outcome="passed")
    transition(breaker, NOW - timedelta(hours=17), "closed", "probe", from_state="half_open")
    transition(breaker, NOW - timedelta(hours=6), "open", "manual", actor="oscar")
    transition(breaker, NOW - timedelta(hours=5), "closed", "manual", "oscar", from_state="open")

    drawn = timeline.build(breaker, now=NOW, window="24h")

    assert [(band.state, band.duration) for band in drawn.bands] == [
        ("open", timedelta(hours=6)),
        ("half_open", timedelta(hours=1)),
        ("closed", timedelta(hours=11)),
        ("open", timedelta(hours=1)),
        ("closed", timedelta(hours=5)),
    ]
    assert drawn.bands[0].x == 0 and drawn.bands[1].x == 250  # 6 h of 24 h, 1000 units wide
    assert [mark.kind for mark in drawn.marks] == ["probe", "manual", "manual"]
    assert drawn.summary == (
        "In the last 24 hours: closed 16 h, open 7 h, half-open 1 h; opened 1 time; "
        "1 probe (1 passed); 2 manual actions."
    )

    week = timeline.build(breaker, now=NOW, window="7d")
    states = [band.state for band in week.bands]
    assert states == ["closed", "open", "half_open", "closed", "open", "closed"]
    assert 5 <= len(week.ticks) <= 7
    assert all(25 <= x <= 975 for x, _ in week.ticks + drawn.ticks)


def test_the_page_shows_the_svg_with_its_text_alternative_and_switches_to_7_days(
    viewer_client, breaker
):
    actions.do_trip(breaker, actor="oscar", reason="maintenance")

    day = viewer_client.get(f"/breakers/{breaker.pk}/").content.decode()
    week = viewer_client.get(f"/breakers/{breaker.pk}/?window=7d", headers=HTMX_PANEL)

    assert '<svg class="state-timeline"' in day and 'role="img"' in day
    assert re.search(r"<desc [^>]*>In the last 24 hours: [^<]*1 manual action\.</desc>", day)
    assert "The timeline as a table" in day
    assert re.search(r'<rect class="band band-open"', day)
    assert 'aria-current="true" class="current">last 24 hours</a>' in day
    assert week.status_code == 200
    assert "States of orders, last 7 days" in week.content.decode()
    assert "window=7d&amp;v=" in week.content.decode()  # the poll keeps the chosen period


def test_an_unknown_period_falls_back_to_the_day(viewer_client, breaker):
    body = viewer_client.get(f"/breakers/{breaker.pk}/?window=1y").content.decode()

    assert "States of orders, last 24 hours" in body


@pytest.fixture
def three(breaker, production):
    """A second and third breaker (rows only: the queries under test do not call AWS)."""
    made = [breaker]
    for name in ("billing", "emails"):
        made.append(
            Breaker.objects.create(
                name=name,
                account=production,
                region=breaker.region,
                function_name=f"{name}-worker",
                mapping_uuid=f"00000000-0000-0000-0000-00000000000{len(made)}",
                queue_arn=f"arn:aws:sqs:{breaker.region}:{production.account_id}:{name}",
                queue_url=f"https://sqs/{name}",
                alarms=[f"{name}-errors"],
            )
        )
    return made


def test_state_counts_gives_every_state_worst_first(three):
    orders, billing, _ = three
    Breaker.objects.filter(pk=orders.pk).update(state=Breaker.State.OPEN)
    Breaker.objects.filter(pk=billing.pk).update(state=Breaker.State.RAMPING)

    counts = charts.state_counts()

    assert [(c.state, c.label, c.count) for c in counts] == [
        ("open", "open", 1),
        ("half_open", "half-open", 0),
        ("ramping", "closing gradually", 1),
        ("closed", "closed", 1),
    ]


def test_open_longer_than_lists_breakers_out_of_traffic_since_before_the_limit(three):
    orders, billing, emails = three
    for breaker, hours in ((orders, 3), (billing, 0.5)):
        Breaker.objects.filter(pk=breaker.pk).update(state=Breaker.State.OPEN)
        transition(breaker, NOW - timedelta(hours=hours), "open")
    transition(emails, NOW - timedelta(hours=5), "open")  # opened, then closed again
    transition(emails, NOW - timedelta(hours=4), "closed", from_state="open")

    found = charts.open_longer_than(1, now=NOW)

    assert [(item.breaker.name, item.since) for item in found] == [
        ("orders", NOW - timedelta(hours=3))
    ]


def test_the_page_costs_the_same_queries_with_a_long_history(
    viewer_client, breaker, django_assert_max_num_queries
):
    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(f"/breakers/{breaker.pk}/").status_code == 200
        return len(queries)

    BreakerTransition.objects.create(
        breaker=breaker,
        from_state="closed",
        to_state="open",
        cause="alarm",
        actor="alarm",
        at=NOW - timedelta(hours=1),
    )
    Probe.objects.create(breaker=breaker, at=NOW - timedelta(minutes=30), outcome="failed")
    few = page_queries()
    for minutes in range(1, 60):
        BreakerTransition.objects.create(
            breaker=breaker,
            from_state="open",
            to_state="open",
            cause="manual",
            actor="cli:root",
            at=NOW - timedelta(minutes=minutes),
        )
        Probe.objects.create(breaker=breaker, at=NOW - timedelta(minutes=minutes), outcome="failed")

    assert page_queries() == few
