"""Every change to users, groups and permissions is an audit event with its actor, whatever the
door: a management command, ``manage.py shell``, the ORM in a worker task, single sign-on."""

import getpass
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, update_last_login
from django.core import serializers
from django.core.management import call_command

from audit.models import AuditEvent
from console import logs
from tests.conftest import make_user
from tests.sso.test_oidc import idp, sign_in  # noqa: F401  (idp: the fake identity provider)

pytestmark = pytest.mark.django_db
CLI = f"cli:{getpass.getuser()}"


def events(**filters) -> list[tuple[str, str, str, dict]]:
    rows = AuditEvent.objects.filter(**filters).order_by("id")
    return [(e.actor, e.action, e.target_label, e.details) for e in rows]


def test_a_superuser_made_by_createsuperuser_is_recorded_as_the_os_user():
    call_command(
        "createsuperuser",
        interactive=False,
        username="root",
        email="root@example.com",
        stdout=StringIO(),
    )

    assert events(action="user.created") == [
        (
            CLI,
            "user.created",
            "root",
            {
                "username": "root",
                "email": "root@example.com",
                "is_active": True,
                "is_staff": True,
                "is_superuser": True,
            },
        )
    ]


def test_an_orm_change_in_manage_py_shell_is_recorded_as_the_os_user():
    vera = make_user("vera", "viewer")
    code = (
        "from django.contrib.auth.models import User; "
        "user = User.objects.get(username='vera'); "
        "user.is_superuser = user.is_staff = True; user.email = 'v@example.com'; user.save()"
    )

    call_command("shell", command=code)

    assert events(action="user.changed") == [
        (
            CLI,
            "user.changed",
            "vera",
            {
                "email": {"from": "", "to": "v@example.com"},
                "is_staff": {"from": False, "to": True},
                "is_superuser": {"from": False, "to": True},
            },
        )
    ]
    vera.refresh_from_db()
    assert vera.is_superuser


def test_outside_any_request_task_or_command_the_actor_is_system():
    make_user("vera", None)
    assert events() == [
        (
            "system",
            "user.created",
            "vera",
            {
                "username": "vera",
                "email": "",
                "is_active": True,
                "is_staff": False,
                "is_superuser": False,
            },
        )
    ]


def test_a_change_made_by_a_worker_task_is_recorded_as_the_worker():
    vera = make_user("vera", None)
    with logs.bound(task="some.task", task_id="t-1"):
        vera.is_active = False
        vera.save()
    assert events(action="user.changed") == [
        ("worker", "user.changed", "vera", {"is_active": {"from": True, "to": False}})
    ]


def test_group_memberships_are_recorded_from_either_side():
    vera = make_user("vera", None)
    operator, admin = Group.objects.get(name="operator"), Group.objects.get(name="admin")

    vera.groups.add(operator)
    admin.user_set.add(vera)
    vera.groups.remove(operator)
    vera.groups.clear()

    assert events(action__startswith="user.groups_") == [
        ("system", "user.groups_added", "vera", {"groups": ["operator"]}),
        ("system", "user.groups_added", "vera", {"groups": ["admin"]}),
        ("system", "user.groups_removed", "vera", {"groups": ["operator"]}),
        ("system", "user.groups_removed", "vera", {"groups": ["admin"]}),
    ]


def test_permissions_granted_to_users_and_groups_are_recorded():
    vera = make_user("vera", None)
    viewer = Group.objects.get(name="viewer")
    change_user = Permission.objects.get(codename="change_user")
    add_schedule = Permission.objects.get(codename="add_schedule")

    vera.user_permissions.add(change_user)
    viewer.permissions.add(add_schedule)
    change_user.group_set.add(viewer)
    vera.user_permissions.clear()

    assert events(action__contains="permissions_") == [
        ("system", "user.permissions_added", "vera", {"permissions": ["auth.change_user"]}),
        ("system", "group.permissions_added", "viewer", {"permissions": ["django_q.add_schedule"]}),
        ("system", "group.permissions_added", "viewer", {"permissions": ["auth.change_user"]}),
        ("system", "user.permissions_removed", "vera", {"permissions": ["auth.change_user"]}),
    ]


def test_groups_created_renamed_and_deleted_are_recorded():
    make_user("vera", "admin")
    group = Group.objects.create(name="on-call")
    group.name = "pager"
    group.save()
    admin = Group.objects.get(name="admin")
    admin.delete()

    assert events(action__startswith="group.") == [
        ("system", "group.created", "on-call", {"name": "on-call"}),
        ("system", "group.renamed", "pager", {"from": "on-call", "to": "pager"}),
        ("system", "group.deleted", "admin", {"name": "admin", "members": ["vera"]}),
    ]


def test_a_new_password_is_recorded_without_the_hash():
    vera = make_user("vera", None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("getpass.getpass", lambda prompt="": "another-long-password-42")
        call_command("changepassword", "vera", stdout=StringIO())

    assert events(action="user.changed") == [(CLI, "user.changed", "vera", {"password": "changed"})]
    vera.refresh_from_db()
    assert vera.password[:20] not in str(AuditEvent.objects.values_list("details", flat=True))


def test_a_hash_upgraded_at_sign_in_is_not_a_new_password():
    vera = make_user("vera", None)
    vera.set_password("the-same-password")
    vera.save(update_fields=["password"])
    assert not AuditEvent.objects.filter(action="user.changed").exists()


def test_a_deleted_user_is_recorded():
    vera = make_user("vera", None)
    vera.delete()
    assert events(action="user.deleted")[0][:3] == ("system", "user.deleted", "vera")


def test_sign_in_bookkeeping_and_unchanged_saves_are_not_recorded():
    vera = make_user("vera", None)
    before = AuditEvent.objects.count()

    update_last_login(None, vera)
    vera.first_name = "Vera"
    vera.save()

    assert AuditEvent.objects.count() == before


def test_data_migrations_are_not_recorded():
    """Their historical models are other classes: the receivers never run, even before the audit
    table exists."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    apps = MigrationExecutor(connection).loader.project_state().apps
    group = apps.get_model("auth", "Group").objects.create(name="from-a-migration")
    permission = apps.get_model("auth", "Permission").objects.get(codename="add_user")
    group.permissions.add(permission)
    apps.get_model("auth", "User").objects.create(username="migrated", is_superuser=True)

    assert not AuditEvent.objects.exists()


def test_rows_loaded_raw_are_not_changes():
    group = Group.objects.create(name="on-call")
    group.permissions.add(Permission.objects.get(codename="view_user"))
    data = serializers.serialize("json", [group])
    group.delete()
    before = AuditEvent.objects.count()

    for obj in serializers.deserialize("json", data):
        obj.save()

    assert Group.objects.get(name="on-call").permissions.count() == 1
    assert AuditEvent.objects.count() == before


def test_roles_synced_by_single_sign_on_are_recorded_as_sso(idp, client, settings):  # noqa: F811
    # The sign-in limit first, as in production: single sign-on goes through it untouched.
    settings.AUTHENTICATION_BACKENDS = [
        "accounts.signin.SignInLimitBackend",
        *settings.AUTHENTICATION_BACKENDS,
    ]

    answer = sign_in(client, idp, ["console-operators"])

    assert answer.status_code == 302 and answer["Location"] == "/"
    assert [event[:3] for event in events(action__startswith="user.")] == [
        ("sso", "user.created", "olivia@example.com"),
        ("sso", "user.groups_added", "olivia@example.com"),
        ("sso", "user.roles_synced", "olivia@example.com"),
    ]
