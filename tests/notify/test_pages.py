"""The Notifications pages: admins only, the URL never shown back, bad URLs refused."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from notify.events import EventType
from notify.models import Channel, Delivery
from tests.conftest import rows

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"
SECRET_PARTS = ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"]


def form(url: str = SLACK, **fields) -> dict:
    data = {
        "name": "ops-slack",
        "url": url,
        "events": [EventType.BREAKER_OPENED, EventType.WORKER_SILENT],
        "all_accounts": "on",
        "enabled": "on",
    }
    data.update(fields)
    return data


def test_an_admin_adds_a_channel_and_never_sees_its_url_again(admin_client):
    response = admin_client.post("/notifications/add/", form())

    channel = Channel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/notifications/{channel.pk}/"
    assert channel.url == SLACK  # kept, encrypted
    assert all(part not in channel.url_encrypted for part in SECRET_PARTS)
    for page in [
        "/notifications/",
        f"/notifications/{channel.pk}/",
        f"/notifications/{channel.pk}/edit/",
    ]:
        html = admin_client.get(page).content.decode()
        assert "ops-slack" in html
        assert "Slack (slack://…)" in html
        assert all(part not in html for part in SECRET_PARTS), page
    event = AuditEvent.objects.get(action="channel.added")
    assert all(part not in str(event.details) for part in SECRET_PARTS)
    assert event.details["events"] == [EventType.BREAKER_OPENED, EventType.WORKER_SILENT]


def test_editing_without_a_url_keeps_the_saved_one(admin_client):
    admin_client.post("/notifications/add/", form())
    channel = Channel.objects.get()

    response = admin_client.post(
        f"/notifications/{channel.pk}/edit/",
        form(url="", name="ops", events=[EventType.BREAKER_CLOSED]),
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.events, channel.url) == ("ops", [EventType.BREAKER_CLOSED], SLACK)
    changed = AuditEvent.objects.get(action="channel.changed")
    assert "url" not in changed.details and changed.details["name"] == "ops"


@pytest.mark.parametrize(
    "url",
    ["bogus://x", "https://hooks.example.com/", "slack://", "msteams://only-one-part/", "json://"],
)
def test_a_url_apprise_cannot_use_is_refused_and_nothing_is_saved(admin_client, url):
    response = admin_client.post("/notifications/add/", form(url=url))

    assert response.status_code == 200
    assert "Apprise" in response.content.decode()
    assert not Channel.objects.exists()


def test_a_channel_of_chosen_accounts_needs_accounts(admin_client):
    response = admin_client.post("/notifications/add/", form(all_accounts=""))

    assert response.status_code == 200
    assert "Choose the accounts" in response.content.decode()
    assert not Channel.objects.exists()


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client", "outsider_client"])
def test_only_admins_see_or_change_channels(persona, request, make_channel, receiver):
    channel = make_channel(receiver.url)
    client = request.getfixturevalue(persona)
    before = rows(Channel, Delivery, AuditEvent)

    answers = [
        client.get("/notifications/").status_code,
        client.get(f"/notifications/{channel.pk}/").status_code,
        client.get("/notifications/add/").status_code,
        client.post("/notifications/add/", form()).status_code,
        client.post(f"/notifications/{channel.pk}/edit/", form(name="taken")).status_code,
        client.post(f"/notifications/{channel.pk}/delete/").status_code,
        client.post(f"/notifications/{channel.pk}/test/").status_code,
    ]

    assert answers == [403] * 7
    assert rows(Channel, Delivery, AuditEvent) == before
    assert receiver.titles() == []
    assert "/notifications/" not in client.get("/").content.decode()


def test_admins_find_notifications_in_the_navigation(admin_client):
    assert 'href="/notifications/"' in admin_client.get("/").content.decode()


def test_send_a_test_reaches_the_channel_and_shows_on_its_page(
    admin_client, make_channel, receiver, django_capture_on_commit_callbacks
):
    channel = make_channel(receiver.url, events=[EventType.BREAKER_CLOSED])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/notifications/{channel.pk}/test/")

    assert response.status_code == 302
    assert receiver.titles() == ["Test from the platform console"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.event_type) == ("sent", 1, "test")
    page = admin_client.get(f"/notifications/{channel.pk}/").content.decode()
    assert f'id="delivery-{delivery.pk}"' in page and "Test from the platform console" in page
    assert AuditEvent.objects.filter(action="channel.tested").count() == 1


def test_a_pending_delivery_keeps_the_list_polling_until_it_settles(
    admin_client, make_channel, receiver
):
    from notify import actions

    channel = make_channel(receiver.url)
    delivery = actions.do_send_test(channel, actor="ada")  # not committed: still pending

    polling = admin_client.get(
        f"/notifications/{channel.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="deliveries"
    )
    assert polling.status_code == 200 and 'hx-trigger="every 5s"' in polling.content.decode()

    actions.do_send_delivery(delivery.pk)
    settled = admin_client.get(
        f"/notifications/{channel.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="deliveries"
    )
    assert settled.status_code == 286  # htmx stops polling


def test_an_admin_deletes_a_channel(admin_client, make_channel, receiver):
    channel = make_channel(receiver.url)

    response = admin_client.post(f"/notifications/{channel.pk}/delete/")

    assert response.status_code == 302
    assert not Channel.objects.exists()
    assert AuditEvent.objects.filter(action="channel.deleted", target_id=str(channel.pk)).exists()


def test_environment_channels_are_listed_but_changed_only_in_the_environment(
    admin_client, settings, receiver
):
    settings.NOTIFY_URLS = [receiver.url]

    page = admin_client.get("/notifications/").content.decode()

    channel = Channel.objects.get()
    assert channel.from_environment and channel.events and channel.all_accounts
    assert str(receiver.port) not in page
    assert admin_client.post(f"/notifications/{channel.pk}/edit/", form()).status_code == 404
    assert admin_client.post(f"/notifications/{channel.pk}/delete/").status_code == 404
    assert Channel.objects.filter(pk=channel.pk).exists()

    settings.NOTIFY_URLS = []  # removed from the environment: kept with its history, disabled
    admin_client.get("/notifications/")
    channel.refresh_from_db()
    assert not channel.enabled


def test_every_sent_notification_is_on_the_channels_pages(admin_client, make_channel, receiver):
    from notify import actions

    channel = make_channel(receiver.url)
    deliveries = [actions.do_send_test(channel, actor="ada") for _ in range(55)]

    first = admin_client.get(f"/notifications/{channel.pk}/").content.decode()
    second = admin_client.get(f"/notifications/{channel.pk}/?page=2").content.decode()

    shown = [d.pk for d in deliveries if f'id="delivery-{d.pk}"' in first + second]
    assert shown == [d.pk for d in deliveries]
    assert "55 in all" in first
