"""Trip and reset hand the AWS work to the worker, proved with the real processes.

pytest-django's live server runs tasks in its own process, synchronously, so it cannot show a
hand-off. Here the console runs as it does in production (``tests.processes``): gunicorn, ONE
worker (``manage.py qcluster``) and, in this process, moto's server standing in for AWS, with its
UpdateEventSourceMapping made 5 s slow. An operator trips and resets a breaker in Chromium: each
POST must be answered within 200 ms of server time, the page must say at once that the mapping
is being disabled (enabled), and then reach the final state by itself, without a reload or a
click, through the panel's own polling (every 5 s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, Response, expect

from scenarios import clients, moto_patches
from scenarios.lambdas import queue_function_mapping_alarm
from tests.conftest import PASSWORD
from tests.e2e.conftest import watched_tab
from tests.processes import Console, moto_in_this_process, own_database, wait_for

ACCOUNT = clients.MOTO_ACCOUNT  # the console's own credentials act there
REGION = "eu-west-1"
FUNCTION = "orders-worker"
MOTO_DELAY = 5.0  # seconds UpdateEventSourceMapping takes in this test
SERVER_BUDGET_MS = 200
# The panel polls every 5 s: the worker's change (5 s in moto) shows at the second poll at the
# latest; twice that leaves room for a slow machine.
SETTLES_WITHIN_MS = 20_000

SET_UP = """
import json
from django.contrib.auth.models import Group, User
from accounts import actions as accounts
from breaker import actions as breakers

account = accounts.do_add_account(
    actor="set-up", account_id="{account}", name="shared", environment="shared", role_arn="",
    regions=["{region}"],
)
breaker = breakers.do_add_breaker(
    actor="set-up", name="orders", account=account, region="{region}", function_name="{function}",
    alarms=["{function}-errors"],
)
operator = User.objects.create_user(username="oscar", password="{password}")
operator.groups.add(Group.objects.get(name="operator"))
print(json.dumps({{"breaker": breaker.pk, "mapping": breaker.mapping_uuid}}))
"""


def build_function(endpoint: str) -> str:
    """In moto: a queue, a function reading it through an enabled mapping, an alarm on its
    errors. Returns the mapping's UUID."""
    return queue_function_mapping_alarm(
        clients.at_endpoint(endpoint, REGION), FUNCTION
    ).mapping_uuid


@pytest.fixture
def slow_mapping_changes() -> Iterator[list[moto_patches.MappingUpdate]]:
    """moto changes a mapping's state at once, inside UpdateEventSourceMapping. Made 5 s slow in
    moto's server thread, the AWS call is slow: a web request that made it could not answer in
    200 ms, and the mapping's state in moto only changes 5 s after the worker asked. Yields the
    calls as moto received them."""
    with moto_patches.mapping_updates(delay=MOTO_DELAY) as updates:
        yield updates


def moto_mapping_state(endpoint: str, uuid: str) -> str:
    client = clients.at_endpoint(endpoint, REGION)("lambda")
    return client.get_event_source_mapping(UUID=uuid)["State"]


def server_duration_ms(console: Console, request_id: str) -> float:
    """What the web server itself measured for one request: the ``duration_ms`` of its log line
    (``console.logs.RequestContextMiddleware``, the outermost middleware), found by the
    ``X-Request-Id`` it answered with."""

    def logged() -> float | None:
        for line in (console.dir / "web.log").read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id and "duration_ms" in record:
                    return record["duration_ms"]
        return None

    return wait_for(f"the log line of request {request_id}", logged, timeout=5, every=0.1)


def submit(page: Page, console: Console, button: str, path: str) -> tuple[float, float]:
    """Click ``button`` and wait for its POST; both the server's figure and the browser's
    (request sent to response received) must be under the budget. Over loopback the two differ
    only by gunicorn and the socket: the browser's figure is the server time plus a little."""
    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith(path)
    ) as answer:
        page.get_by_role("button", name=button).click()
    response: Response = answer.value
    assert response.status == 200, response.text()
    response.finished()
    timing = response.request.timing
    browser_ms = timing["responseEnd"] - timing["requestStart"]
    server_ms = server_duration_ms(console, response.headers["x-request-id"])
    figures = f"{button}: server {server_ms:.1f} ms, browser {browser_ms:.1f} ms"
    assert server_ms < SERVER_BUDGET_MS, figures
    assert browser_ms < SERVER_BUDGET_MS, figures
    return server_ms, browser_ms


def test_trip_and_reset_answer_at_once_and_the_page_follows_the_worker(
    browser, tmp_path: Path, slow_mapping_changes: list[moto_patches.MappingUpdate]
):
    started = time.monotonic()
    with moto_in_this_process() as moto, own_database(tmp_path, "hand_off") as database_url:
        mapping = build_function(moto)
        console = Console(tmp_path, database_url, AWS_ENDPOINT_URL=moto, LOG_FORMAT="json")
        # gunicorn with DEBUG off serves static files from STATIC_ROOT only (WhiteNoise): collect
        # them for this test, or the page would run without htmx.
        with (tmp_path / "process_settings.py").open("a") as settings:
            settings.write(f"STATIC_ROOT = {str(tmp_path / 'static')!r}\n")
        console.manage("migrate", "--no-input")
        console.manage("collectstatic", "--no-input", "--verbosity", "0")
        ids = console.run(
            SET_UP.format(account=ACCOUNT, region=REGION, function=FUNCTION, password=PASSWORD)
        )
        assert ids["mapping"] == mapping
        context = None
        try:
            web = console.start_web()
            console.start_worker()
            wait_for(
                "/healthz/worker reports a beating worker",
                lambda: (
                    requests.get(f"{web}/healthz/worker", timeout=5).json().get("worker") == "ok"
                ),
                timeout=30,
                log=console.logs,
            )

            # Every Content-Security-Policy violation fails the test (as tests/e2e/conftest.py's
            # page fixture does for the live server).
            context, page, violations = watched_tab(browser, web)
            page.on("dialog", lambda dialog: dialog.accept())  # Reset asks for confirmation

            page.goto("/login/")
            page.fill("#id_username", "oscar")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            page.goto(f"/breakers/{ids['breaker']}/")

            panel = page.locator("#breaker-panel")
            state = panel.locator("h1 .state")
            mapping_badge = panel.locator("dt:text-is('Mapping') + dd .badge")
            settling = panel.locator(".settling")
            expect(state).to_have_text("closed")
            expect(mapping_badge).to_have_text("Enabled")
            expect(settling).to_have_count(0)
            page.evaluate("window.__marker = 'no reload'")

            # Trip: answered at once, the page says the mapping is being disabled...
            page.fill("#trip-reason", "payments API down, stop the orders worker")
            trip_server_ms, trip_browser_ms = submit(
                page, console, "Trip", f"/breakers/{ids['breaker']}/trip/"
            )
            tripped = time.monotonic()
            expect(state).to_have_text("open", timeout=1_000)
            expect(settling).to_have_text("disabling the mapping…", timeout=1_000)
            assert moto_mapping_state(moto, mapping) == "Enabled"  # AWS has not changed yet
            # ...and shows it done by itself once the worker has had its answer from AWS.
            expect(mapping_badge).to_have_text("Disabled", timeout=SETTLES_WITHIN_MS)
            expect(settling).to_have_count(0)
            trip_settled_s = time.monotonic() - tripped
            expect(state).to_have_text("open")
            assert moto_mapping_state(moto, mapping) == "Disabled"

            # Reset: the same, towards closed and Enabled; the panel keeps polling (cheaply: 204
            # while nothing changes) so a trip made elsewhere would still show.
            reset_server_ms, reset_browser_ms = submit(
                page, console, "Reset", f"/breakers/{ids['breaker']}/reset/"
            )
            reset = time.monotonic()
            expect(state).to_have_text("closed", timeout=1_000)
            expect(settling).to_have_text("enabling the mapping…", timeout=1_000)
            assert moto_mapping_state(moto, mapping) == "Disabled"  # AWS has not changed yet
            expect(mapping_badge).to_have_text("Enabled", timeout=SETTLES_WITHIN_MS)
            expect(settling).to_have_count(0)
            reset_settled_s = time.monotonic() - reset
            expect(state).to_have_text("closed")
            expect(panel).to_have_attribute("hx-trigger", "every 5s")
            assert moto_mapping_state(moto, mapping) == "Enabled"

            assert page.evaluate("window.__marker") == "no reload"
            assert violations == [], f"Content-Security-Policy violations: {violations}"
            figures = (
                f"trip: server {trip_server_ms:.1f} ms, browser {trip_browser_ms:.1f} ms, "
                f"page settled after {trip_settled_s:.1f} s; reset: server "
                f"{reset_server_ms:.1f} ms, browser {reset_browser_ms:.1f} ms, page settled "
                f"after {reset_settled_s:.1f} s; test {time.monotonic() - started:.1f} s"
            )
            print(figures)
            # The worker made both changes, each through the slow call, and nothing else did.
            assert [call.enabled for call in slow_mapping_changes] == [False, True], figures
            assert console.sql(
                "SELECT cause, actor, to_state FROM breaker_breakertransition ORDER BY id"
            ) == [("manual", "oscar", "open"), ("manual", "oscar", "closed")]
            assert console.sql(
                f"SELECT state, mode, mapping_state, mapping_error FROM breaker_breaker "
                f"WHERE id = {ids['breaker']}"
            ) == [("closed", "auto", "Enabled", "")]
        finally:
            if context is not None:
                context.close()
            console.stop_all()
