"""Health, sign-in, roles, layout and worker schedules of the console itself."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import OperationalError
from django.test import Client

from console import schedules
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_healthz_answers_without_sign_in():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_unreachable(monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}
    assert "db.internal" not in response.content.decode()


@pytest.mark.django_db
def test_sign_in_and_out(operator_user):
    client = Client()
    response = client.post("/login/", {"username": "oscar", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/logout/")
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_roles_nest_viewer_within_operator_within_admin():
    perms = {
        group.name: set(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.all()
    }
    assert {"viewer", "operator", "admin"} <= set(perms)
    assert perms["viewer"] < perms["operator"] < perms["admin"]
    assert "view_auditevent" in perms["viewer"]
    assert "add_awsaccount" in perms["admin"] - perms["operator"]


@pytest.mark.django_db
def test_every_section_is_in_the_navigation(viewer_client):
    page = viewer_client.get("/").content.decode()
    for label in [
        "Dashboard",
        "Repositories",
        "Deletions",
        "Breakers",
        "Accounts",
        "Inbox",
        "Audit",
    ]:
        assert f">{label}</a>" in page
    assert 'hx-headers=\'{"x-csrftoken"' in page


@pytest.mark.django_db
def test_unknown_pages_get_the_consoles_404(viewer_client):
    response = viewer_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.content.decode()


def test_no_page_loads_anything_from_another_host():
    """The console works in an isolated network: no CDN, no external font or script."""
    external = re.compile(r"""(src|href)=["']?(https?:)?//""", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("templates", "static")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and (external.search(path.read_text()) or "@import url(http" in path.read_text())
    ]
    assert offenders == []


@pytest.mark.django_db
def test_schedules_are_written_once_and_updated_in_place():
    from django_q.models import Schedule

    schedules.register("test.every-five", "console.clock.now", minutes=5)
    try:
        schedules.sync()
        schedules.sync()
        assert Schedule.objects.filter(name="test.every-five").count() == 1

        schedules.register("test.every-five", "console.clock.now", minutes=10)
        assert schedules.sync() == 1
        assert Schedule.objects.get(name="test.every-five").minutes == 10
    finally:
        schedules._registry.pop("test.every-five")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(86400, "1d"), (5400, "1h 30m"), (0, "0s"), (90061, "1d 1h 1m 1s")]
)
def test_durations_read_like_the_settings(seconds, shown):
    from datetime import timedelta

    from console.templatetags.console import duration

    assert duration(timedelta(seconds=seconds)) == shown
