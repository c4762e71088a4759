"""Django's admin is root (it edits users, permissions and the worker's schedules): superusers
only. The escalation found in a review (an ``admin``-group staff user ticks ``is_superuser`` on
themself, then schedules ``os.makedirs`` for the worker) is refused at every step."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_q.models import Schedule

from audit.models import AuditEvent
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

SCHEDULE = {
    "name": "pwned",
    "func": "os.makedirs",
    "args": "'/tmp/pwned'",
    "schedule_type": "O",
    "repeats": "-1",
    "next_run_0": "2030-01-01",
    "next_run_1": "00:00:00",
}


@pytest.fixture
def staff_admin(admin_user) -> Client:
    """Ada in the console's admin role, and staff: what the issue's attacker had."""
    admin_user.is_staff = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def superuser_client(db) -> Client:
    root = User.objects.create_superuser("root", "root@example.com", "a-long-random-password")
    client = Client()
    client.force_login(root)
    return client


def change_form(user: User, **changes) -> dict:
    form = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def test_it_refuses_the_admin_index_to_a_staff_user_in_the_admin_role(staff_admin):
    response = staff_admin.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_refuses_a_staff_admin_making_themself_superuser(staff_admin, admin_user):
    url = f"/admin/auth/user/{admin_user.pk}/change/"
    assert staff_admin.get("/admin/auth/user/").status_code == 302
    assert staff_admin.get(url).status_code == 302

    response = staff_admin.post(url, change_form(admin_user, is_staff="on", is_superuser="on"))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    admin_user.refresh_from_db()
    assert admin_user.is_superuser is False
    assert not AuditEvent.objects.filter(action="user.changed", details__has_key="is_superuser")


def test_it_refuses_a_staff_admin_adding_a_schedule_for_the_worker(staff_admin):
    assert staff_admin.get("/admin/django_q/schedule/add/").status_code == 302

    response = staff_admin.post("/admin/django_q/schedule/add/", SCHEDULE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not Schedule.objects.filter(func="os.makedirs").exists()


def test_it_refuses_even_a_user_holding_every_auth_permission_directly(db):
    from django.contrib.auth.models import Permission

    mallory = make_user("mallory", "admin")
    mallory.is_staff = True
    mallory.save()
    mallory.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    client = Client()
    client.force_login(mallory)

    assert client.get("/admin/auth/user/").status_code == 302
    assert client.get("/admin/auth/group/").status_code == 302


def test_a_superuser_still_uses_the_admin(superuser_client):
    assert superuser_client.get("/admin/").status_code == 200
    assert superuser_client.get("/admin/auth/user/").status_code == 200
    assert superuser_client.get("/admin/django_q/schedule/add/").status_code == 200


def test_a_deactivated_superuser_is_refused(superuser_client):
    User.objects.filter(username="root").update(is_active=False)
    assert superuser_client.get("/admin/").status_code == 302


def test_what_a_superuser_changes_in_the_admin_is_audited_with_their_name(
    superuser_client, viewer_user
):
    from django.contrib.auth.models import Group

    operator = Group.objects.get(name="operator")
    response = superuser_client.post(
        f"/admin/auth/user/{viewer_user.pk}/change/",
        change_form(viewer_user, is_staff="on", groups=[operator.pk]),
    )

    assert response.status_code == 302
    by_root = AuditEvent.objects.filter(actor="root", target_id=str(viewer_user.pk))
    assert {event.action: event.details for event in by_root} == {
        "user.changed": {"is_staff": {"from": False, "to": True}},
        "user.groups_removed": {"groups": ["viewer"]},
        "user.groups_added": {"groups": ["operator"]},
    }
