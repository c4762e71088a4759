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


NAV_LINK = re.compile(r'<nav aria-label="Sections">(.*?)</nav>', re.S)


def nav_links(client) -> dict[str, str]:
    page = client.get("/").content.decode()
    return dict(
        (label, href)
        for href, label in re.findall(
            r'<a href="([^"]+)"[^>]*>([^<]+)</a>', NAV_LINK.search(page)[1]
        )
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, sections",
    [
        ("viewer", ["Dashboard", "Repositories", "Deletions", "Breakers", "Accounts", "Audit"]),
        (
            "operator",
            ["Dashboard", "Repositories", "Deletions", "Breakers", "Accounts", "Inbox", "Audit"],
        ),
        (
            "admin",
            [
                "Dashboard",
                "Repositories",
                "Deletions",
                "Breakers",
                "Accounts",
                "Inbox",
                "Audit",
                "Users",
                "Notifications",
            ],
        ),
        (None, ["Dashboard"]),
    ],
)
def test_the_navigation_lists_only_pages_the_role_may_open(role, sections):
    from tests.conftest import make_user

    client = Client()
    client.force_login(make_user("someone", role))
    links = nav_links(client)
    assert list(links) == sections
    for label, href in links.items():
        assert client.get(href).status_code == 200, f"{role} is sent to {label} and refused"
    assert 'hx-headers=\'{"x-csrftoken"' in client.get("/").content.decode()


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


# --- Layout, words and dead ends (issue 10) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "forms", "shown"),
    [
        (1, "check", "1 check"),
        (0, "check", "0 checks"),
        (3, "check", "3 checks"),
        (1, "time,times", "1 time"),
        (2, "repository,repositories", "2 repositories"),
        (12345, "image", "12,345 images"),
        (None, "check", "0 checks"),
    ],
)
def test_counts_are_written_with_the_right_plural(value, forms, shown):
    from console.templatetags.console import counted

    assert counted(value, forms) == shown


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0, "$0.00"),
        (0.0, "$0.00"),
        (1234.567, "$1,234.57"),
        (-3.1, "-$3.10"),
        (None, ""),
        ("x", ""),
    ],
)
def test_money_is_written_in_dollars_and_cents(amount, shown):
    from console.templatetags.console import usd

    assert usd(amount) == shown


def test_one_timestamp_format_with_the_zone_and_the_relative_time(monkeypatch):
    from datetime import UTC, datetime, timedelta, timezone

    from console import clock
    from console.templatetags.console import ago, utc, when

    now = datetime(2026, 11, 30, 10, 41, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: now)
    moment = datetime(2026, 11, 30, 9, 41, 0, tzinfo=timezone(timedelta(hours=1)))  # 08:41 UTC
    assert utc(moment) == "2026-11-30 08:41 UTC"
    assert utc("2026-11-30T08:41:59+00:00") == "2026-11-30 08:41 UTC"
    assert utc(None) == ""
    assert when(moment) == (
        '<time datetime="2026-11-30T08:41:00+00:00" title="2 hours ago">2026-11-30 08:41 UTC</time>'
    )
    assert when(moment, "ago").endswith('<span class="muted small">(2 hours ago)</span>')
    assert ago(now - timedelta(seconds=20)) == "just now"
    assert ago(now - timedelta(minutes=1)) == "1 minute ago"
    assert ago(now + timedelta(days=3)) == "in 3 days"


def test_no_template_writes_a_time_with_its_own_format():
    """Every time goes through the console filters (``when``, ``utc``), never ``|date:"..."``."""
    mine = ["base.html", "console", "audit", "webhooks", "403.html", "404.html", "500.html"]
    offenders = [
        str(path.relative_to(ROOT))
        for name in mine
        for path in ((ROOT / "templates" / name).rglob("*.html") if (ROOT / "templates" / name).is_dir() else [ROOT / "templates" / name])
        if re.search(r"\|date:", path.read_text())
    ]  # fmt: skip
    assert offenders == []


@pytest.mark.django_db
def test_every_page_has_a_skip_link_the_banner_in_a_landmark_and_a_favicon(viewer_client, settings):
    settings.SANDBOX = True
    page = viewer_client.get("/").content.decode()
    assert page.index('<a class="skip-link" href="#main">') < page.index("<header")
    assert '<main id="main" tabindex="-1">' in page
    header = page[page.index("<header") : page.index("</header>")]
    assert 'class="sandbox-banner"' in header
    assert '<link rel="icon" href="/static/console/favicon.svg"' in page
    assert (ROOT / "static/console/favicon.svg").read_text().startswith("<svg")
    assert '<button type="button" class="nav-toggle" aria-expanded="false" aria-controls="site-menu">' in page  # fmt: skip


@pytest.mark.django_db
def test_favicon_ico_points_at_the_svg_without_sign_in():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/console/favicon.svg"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_the_404_page_is_the_consoles_with_debug_on_or_off(viewer_client, settings, debug):
    settings.DEBUG = debug
    for address in ("/no-such-page/", "/checks/999999/", "/breakers/999999/"):
        response = viewer_client.get(address)
        assert response.status_code == 404
        body = response.content.decode()
        assert "There is nothing at this address." in body, address
        assert 'href="#main"' in body  # the console's layout, not Django's technical page
        assert "DEBUG = True" not in body


def test_the_500_page_renders_without_a_database_or_a_request():
    """No django_db mark: pytest-django fails any query made here."""
    from django.template import loader

    body = loader.get_template("500.html").render({})
    assert "Something went wrong" in body
    assert 'href="#main"' in body
    assert "/static/console/console.css" in body


@pytest.mark.django_db
def test_a_403_is_the_consoles_page(viewer_client):
    response = viewer_client.get("/inbox/")
    assert response.status_code == 403
    assert 'href="#main"' in response.content.decode()
    assert "Nothing was changed." in response.content.decode()


# --- The dashboard: needs attention, pictures, bounded queries -----------------------------------


@pytest.fixture
def console_rows(db):
    from datetime import UTC, datetime

    from scenarios import pages

    return pages.build(pages.Scale.small(), datetime(2026, 11, 30, 8, 0, tzinfo=UTC))


def _at(monkeypatch, when):
    from console import clock

    monkeypatch.setattr(clock, "now", lambda: when)


@pytest.mark.django_db
def test_the_dashboard_lists_what_needs_attention_with_links(
    viewer_client, console_rows, monkeypatch
):
    from datetime import UTC, datetime

    from breaker.models import Breaker, BreakerTransition

    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    _at(monkeypatch, now)
    fresh = console_rows.breakers[1]  # opened ten minutes ago: not yet worth a line
    Breaker.objects.filter(pk=fresh.pk).update(state="open")
    BreakerTransition.objects.create(breaker=fresh, from_state="closed", to_state="open",
                                     cause="alarm", actor="worker", at=now.replace(minute=0) - __import__("datetime").timedelta(minutes=10))  # fmt: skip
    body = viewer_client.get("/").content.decode()
    attention = body[
        body.index('id="attention-title"') : body.index(
            "</section>", body.index('id="attention-title"')
        )
    ]
    assert "No worker has run yet" in attention
    assert re.search(r'<a href="/deletions/\?status=failed">\d+ checks? failed</a>', attention)
    open_breaker = console_rows.breakers[2]
    assert (
        f'<a href="/breakers/{open_breaker.pk}/">Breaker {open_breaker.name} open for ' in attention
    )
    assert f"Breaker {fresh.name}" not in attention
    assert '<a href="/accounts/#account-333333333333">Account development (333333333333) cannot be read</a>' in attention  # fmt: skip


@pytest.mark.django_db
def test_a_user_without_a_role_sees_no_attention_item_it_cannot_open(console_rows):
    from tests.conftest import make_user

    client = Client()
    client.force_login(make_user("nobody", None))
    body = client.get("/").content.decode()
    assert "/deletions/?status=failed" not in body
    assert 'href="/breakers/' not in body
    assert "chart-reclaimable" not in body


@pytest.mark.django_db
def test_every_chart_has_its_figures_in_words(viewer_client, console_rows, monkeypatch):
    from datetime import UTC, datetime

    _at(monkeypatch, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    body = viewer_client.get("/").content.decode()
    for chart in ("chart-reclaimed", "chart-reclaimable", "chart-breakers"):
        figure = body[
            body.index(f'id="{chart}"') : body.index("</figure>", body.index(f'id="{chart}"'))
        ]
        label = re.search(r'<svg class="bar-chart"[^>]* role="img" aria-label="([^"]+)"', figure)
        assert label, chart
        rows = re.findall(
            r"<tr><td>(?:<a [^>]+>)?([^<]+)(?:</a>)?</td><td>([^<]+)</td></tr>", figure
        )
        assert rows, chart
        for name, value in rows:  # the picture's words and the table say the same
            assert f"{name} {value}" in label[1].replace("&#x27;", "'")
    assert (
        "Breakers by state: open 1 breaker; half-open 1 breaker; closing gradually 0 breakers; "
        "closed 2 breakers" in body
    )


@pytest.mark.django_db
def test_the_dashboard_does_not_count_every_inbox_event(admin_client, console_rows):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get("/").status_code == 200
    inbox = [q["sql"] for q in queries.captured_queries if "webhooks_inboundevent" in q["sql"]]
    assert inbox and all("WHERE" in sql and "LIMIT" in sql for sql in inbox)
    image_counts = [
        q["sql"] for q in queries.captured_queries if 'FROM "cleanup_image"' in q["sql"] and "COUNT" in q["sql"]
    ]  # fmt: skip
    # Only the images the console archived (a partial index) are counted, never every image.
    assert all('"archived_by_console"' in sql for sql in image_counts), image_counts


@pytest.mark.django_db
def test_the_dashboards_queries_do_not_grow_with_rows(admin_client):
    from datetime import UTC, datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scenarios import pages

    pages.build(pages.Scale(3, 6, 4, 4, 8, 4, 10, 10), datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    admin_client.get("/")
    with CaptureQueriesContext(connection) as few:
        admin_client.get("/")
    from breaker.models import Breaker

    Breaker.objects.update(state="open")  # every breaker a line of its own
    with CaptureQueriesContext(connection) as more:
        admin_client.get("/")
    assert len(more) <= len(few) + 1
