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
    before = list(AuditEvent.objects.order_by("pk").values())
    assert (
        admin_client.post(
            f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert list(AuditEvent.objects.order_by("pk").values()) == before
    assert AuditEvent.objects.filter(pk=event.pk, actor="ada").exists()


@pytest.fixture
def app_role():
    """A role set up the way docs/deploy.md says (``grant_app_role``), and a connection as it.
    Grants go through a separate autocommit connection: the test's own transaction never
    commits, and the role's connection would not see them."""
    import psycopg

    from audit.management.commands.grant_app_role import grant_statements

    settings_dict = connection.settings_dict
    params = {
        "host": settings_dict["HOST"] or "127.0.0.1",
        "port": settings_dict["PORT"] or 5432,
        "dbname": settings_dict["NAME"],
    }
    role, password = "console_app_test", "app-role-password-0123"
    with psycopg.connect(
        **params, user=settings_dict["USER"], password=settings_dict["PASSWORD"], autocommit=True
    ) as owner:
        if _role_exists(owner, role):  # left by an interrupted run
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        for statement in grant_statements(role):
            owner.execute(statement)
        with psycopg.connect(**params, user=role, password=password) as as_app:
            yield as_app
        owner.execute(f"DROP OWNED BY {role}")
        owner.execute(f"DROP ROLE {role}")


def _role_exists(conn, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="roles and privileges exist on PostgreSQL only"
)
@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_auditevent",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_auditevent SET actor = 'mallory'",
        "DROP TABLE audit_auditevent",
    ],
)
def test_the_application_role_cannot_erase_the_audit_history(app_role, statement):
    import psycopg

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_role.execute(statement)
    app_role.rollback()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="roles and privileges exist on PostgreSQL only"
)
def test_the_application_role_still_appends_and_reads_and_works_elsewhere(app_role):
    app_role.execute(
        "INSERT INTO audit_auditevent (at, actor, action, target_type, target_id, target_label,"
        " account_id, details) VALUES (now(), 'worker', 'test.appended', '', '', '', '', '{}')"
    )
    assert app_role.execute(
        "SELECT count(*) FROM audit_auditevent WHERE action = 'test.appended'"
    ).fetchone() == (1,)
    app_role.execute("UPDATE accounts_awsaccount SET name = name")
    app_role.execute("DELETE FROM django_q_ormq WHERE false")
    app_role.rollback()  # nothing of this outlives the test
