"""Audit history is only ever appended to."""

import pytest
from django.db import DatabaseError, connection, transaction

import audit
from audit.models import AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return audit.record("ada", "account.added", target_type="aws_account", target_id="222222222222")


def test_updating_an_event_raises(event):
    event.actor = "mallory"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get().actor == "ada"


def test_deleting_an_event_raises(event):
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert AuditEvent.objects.count() == 1


def test_bulk_update_and_delete_raise(event):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(actor="mallory")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().actor == "ada"


def test_on_postgresql_the_database_refuses_raw_changes(event):
    if connection.vendor != "postgresql":
        assert connection.vendor == "sqlite"  # SQLite keeps the model-level guard only
        return
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET actor = 'mallory'")
    assert AuditEvent.objects.get().actor == "ada"


def test_the_admin_shows_events_read_only(admin_client, event):
    from django.contrib.auth.models import User

    User.objects.filter(username="ada").update(is_staff=True, is_superuser=True)
    page = admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert 'name="actor"' not in page.content.decode()
    assert (
        admin_client.post(
            f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.count() >= 1
