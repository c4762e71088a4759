"""`make demo`: a channel to the console's own sandbox webhook sink, and the page showing it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from notify import actions
from notify.models import Channel, Delivery
from sandbox import demo_notify, seed_notify


@pytest.fixture(autouse=True)
def empty_sink():
    demo_notify._received.clear()
    yield
    demo_notify._received.clear()


def test_the_seed_adds_one_channel_to_the_sink_with_a_first_test(db, monkeypatch, receiver):
    monkeypatch.setenv(seed_notify.SINK_ENV, receiver.url)

    channel = seed_notify.seed()
    seed_notify.seed()  # `make demo` seeds once, but a second run must not duplicate

    assert Channel.objects.get() == channel
    delivery = Delivery.objects.get()
    assert (delivery.event_type, delivery.status) == ("test", "pending")  # the worker sends it
    actions.do_send_delivery(delivery.pk)
    assert receiver.titles() == ["Test from the platform console"]


def test_without_the_demo_the_seed_adds_nothing(db, monkeypatch):
    monkeypatch.delenv(seed_notify.SINK_ENV, raising=False)

    assert seed_notify.seed() is None
    assert not Channel.objects.exists()


def test_the_sink_answers_404_outside_the_sandbox(db, settings):
    settings.SANDBOX = False

    response = Client().post("/sandbox/notify/sink/", b"{}", content_type="application/json")

    assert response.status_code == 404
    assert not demo_notify._received


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_demo_notification_arrives_at_the_sink_and_shows_on_its_page(
    settings, live_server, admin_client
):
    settings.SANDBOX = True
    host = urlsplit(live_server.url).netloc
    channel = actions.do_save_channel(
        None,
        actor="sandbox",
        name="demo webhook",
        url=f"json://{host}/sandbox/notify/sink/",
        events=["breaker.opened"],
        all_accounts=True,
        accounts=[],
        enabled=True,
    )

    delivery = actions.do_send_test(channel, actor="ada")  # committed: the sync worker sends it

    delivery.refresh_from_db()
    assert delivery.status == "sent", delivery.last_error
    page = admin_client.get("/sandbox/notify/").content.decode()
    assert "Test from the platform console" in page
    channel_page = admin_client.get(f"/notifications/{channel.pk}/").content.decode()
    assert "/sandbox/notify/" in channel_page
