"""A breaker tripped from another session (the operator CLI, ``manage.py breaker trip``) shows as
open on a page already open in Chromium within the panel's polling interval, without a reload.

The console runs as real processes (``tests.processes``): gunicorn on a database of this test's
own, moto's server in this process standing in for AWS; the CLI is a subprocess on the same
database, as an operator's shell would be. Its trip disables the mapping itself (the CLI waits
for AWS), so no worker is needed."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from scenarios import clients
from scenarios.lambdas import queue_function_mapping_alarm
from tests.conftest import PASSWORD
from tests.e2e.conftest import watched_tab
from tests.processes import Console, moto_in_this_process, own_database

ACCOUNT = clients.MOTO_ACCOUNT
REGION = "eu-west-1"
FUNCTION = "orders-worker"
POLL_INTERVAL_MS = 5_000  # hx-trigger="every 5s" on the panel
SLACK_MS = 2_500  # the poll's own round trip and the redraw, on a busy 2-core machine

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
viewer = User.objects.create_user(username="vera", password="{password}")
viewer.groups.add(Group.objects.get(name="viewer"))
print(json.dumps({{"breaker": breaker.pk, "mapping": breaker.mapping_uuid}}))
"""


def test_a_trip_from_the_cli_turns_the_open_page_open_within_its_polling_interval(
    browser, tmp_path: Path
):
    with moto_in_this_process() as moto, own_database(tmp_path, "cli_trip") as database_url:
        mapping = queue_function_mapping_alarm(clients.at_endpoint(moto, REGION), FUNCTION)
        console = Console(tmp_path, database_url, AWS_ENDPOINT_URL=moto)
        with (tmp_path / "process_settings.py").open("a") as settings:
            settings.write(f"STATIC_ROOT = {str(tmp_path / 'static')!r}\n")
        console.manage("migrate", "--no-input")
        console.manage("collectstatic", "--no-input", "--verbosity", "0")
        ids = console.run(
            SET_UP.format(account=ACCOUNT, region=REGION, function=FUNCTION, password=PASSWORD)
        )
        assert ids["mapping"] == mapping.mapping_uuid
        context = None
        try:
            web = console.start_web()
            context, page, violations = watched_tab(browser, web)
            page.goto("/login/")
            page.fill("#id_username", "vera")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            page.goto(f"/breakers/{ids['breaker']}/")
            state = page.locator("#breaker-panel h1 .state")
            expect(state).to_have_text("closed")
            page.evaluate("window.__marker = 'no reload'")

            started = time.monotonic()
            out = console.manage("breaker", "trip", "orders", "--reason", "failover of the DB")
            tripped = time.monotonic()
            assert "orders tripped (mapping Disabled)" in out

            expect(state).to_have_text("open", timeout=POLL_INTERVAL_MS + SLACK_MS)
            seen_after_s = time.monotonic() - tripped
            expect(page.locator("#timeline li").first).to_contain_text("failover of the DB")
            expect(page.locator("#breaker-panel .mode")).to_have_text("tripped by hand")
            assert page.evaluate("window.__marker") == "no reload"
            assert violations == [], f"Content-Security-Policy violations: {violations}"
            print(
                f"the CLI took {tripped - started:.1f} s; the open page showed its trip "
                f"{seen_after_s:.1f} s after it returned"
            )
        finally:
            if context is not None:
                context.close()
            console.stop_all()
