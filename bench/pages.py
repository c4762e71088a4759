"""Server time and query count of every page and htmx fragment, as each role, on PostgreSQL.

Builds the data set of issue 10 with bulk inserts (scenarios/pages.py: 3 accounts, 200
repositories, 50,000 images, 10,000 checks, 50 breakers with 20,000 transitions, 200,000 audit
events, 100,000 inbox events) in a database of its own, then requests every page and fragment
with Django's test Client (server time only: no network, no browser) as a viewer, an operator and
an admin. Each address is asked once to warm up, then ``--runs`` times; the table shows the
median milliseconds and the queries of one request (CaptureQueriesContext).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pages .venv/bin/python bench/pages.py
        [--runs 5] [--keep]   # --keep: reuse the database built by an earlier run

The database named in DATABASE_URL is dropped and created again unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_pages")
# The test settings: the console's, with plain static files (no collectstatic manifest needed).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("SECRET_KEY", "bench-pages-only-" + "0" * 40)
os.environ["DEBUG"] = "false"
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
LIMIT_MS = 100


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup(keep: bool) -> None:
    if not keep:
        recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not keep or not User.objects.filter(username="bench-viewer").exists():
        from scenarios import pages

        started = time.perf_counter()
        pages.build(pages.Scale.issue(), NOW)
        print(f"data set built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        from tests.conftest import make_user

        for role in ("viewer", "operator", "admin"):
            make_user(f"bench-{role}", role)


def addresses() -> list[tuple[str, str, dict[str, str]]]:
    """(what, address, extra headers) of every page and fragment."""
    from audit.models import AuditEvent
    from breaker.models import Breaker
    from cleanup.models import DeletionCheck, Repository
    from console import keyset
    from webhooks.models import InboundEvent

    htmx = {"HTTP_HX_REQUEST": "true"}
    breaker = Breaker.objects.filter(state="open").order_by("pk").first() or Breaker.objects.first()
    repository = Repository.objects.order_by("pk").first()
    check = DeletionCheck.objects.filter(status="awaiting_approval").order_by("pk").first()
    event = InboundEvent.objects.filter(status="failed").order_by("pk").first()
    oldest_event = InboundEvent.objects.order_by("received_at", "pk")[60]
    oldest_audit = AuditEvent.objects.order_by("at", "pk")[60]
    assert breaker and repository and check and event
    inbox_last = f"/inbox/?older={keyset.cursor_of(oldest_event, 'received_at')}"
    audit_last = f"/audit/?older={keyset.cursor_of(oldest_audit, 'at')}"
    return [
        ("dashboard", "/", {}),
        ("accounts", "/accounts/", {}),
        ("users", "/users/", {}),
        ("repositories", "/repositories/", {}),
        ("repository", f"/repositories/{repository.pk}/", {}),
        ("deletions (awaiting)", "/deletions/", {}),
        ("deletions (awaiting) fragment", "/deletions/", {**htmx, "HTTP_HX_TARGET": "queue-rows"}),
        ("deletions (deleted)", "/deletions/?status=deleted", {}),
        ("deletions (in use)", "/deletions/?status=in_use", {}),
        ("deletions (failed)", "/deletions/?status=failed", {}),
        ("check", f"/checks/{check.pk}/", {}),
        ("breakers", "/breakers/", {}),
        ("breakers fragment", "/breakers/", htmx),
        ("breaker", f"/breakers/{breaker.pk}/", {}),
        ("breaker fragment", f"/breakers/{breaker.pk}/", htmx),
        ("breaker add", "/breakers/add/", {}),
        ("inbox", "/inbox/", {}),
        ("inbox filtered fragment", "/inbox/?status=failed", htmx),
        ("inbox last page", inbox_last, {}),
        ("inbox event", f"/inbox/{event.pk}/", {}),
        ("audit", "/audit/", {}),
        ("audit filtered fragment", "/audit/?action=check.&account=222222222222", htmx),
        ("audit last page", audit_last, {}),
        ("audit export.csv, first row", "/audit/export.csv", {}),
    ]


def measure(client, address: str, headers: dict[str, str]) -> tuple[int, float, int]:
    """Status, milliseconds and queries of one request. A streamed answer (the CSV export) is
    timed to its first rows, when the client starts receiving; ``STREAMED`` keeps the time to
    its last row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(address, **headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.streaming:
            chunks = iter(response.streaming_content)
            next(chunks, None)
            next(chunks, None)  # the header line, then the first row
            elapsed = (time.perf_counter() - started) * 1000
            rows = sum(1 for _ in chunks) + 1
            STREAMED[address] = ((time.perf_counter() - started) * 1000, rows)
    return response.status_code, elapsed, len(queries)


STREAMED: dict[str, tuple[float, int]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse the database of an earlier run")
    options = parser.parse_args()
    setup(options.keep)
    import logging

    logging.getLogger("django.request").setLevel(logging.ERROR)  # the expected 403s

    from django.contrib.auth.models import User
    from django.test import Client

    roles = ("viewer", "operator", "admin")
    clients = {}
    for role in roles:
        client = Client()
        client.force_login(User.objects.get(username=f"bench-{role}"))
        clients[role] = client

    print(f"{'page or fragment':34} {'viewer':>14}  {'operator':>14}  {'admin':>14}")
    rows = []
    for what, address, headers in addresses():
        cells = []
        runs = 1 if address.endswith(".csv") else options.runs
        for role in roles:
            # A warm-up first (caches, connections); the long export is asked for once only.
            status, elapsed, queries = measure(clients[role], address, headers)
            if status != 200:
                cells.append(f"{status:>14}")
                continue
            timings = [elapsed] if runs == 1 else []
            for _ in range(runs if runs > 1 else 0):
                _, elapsed, queries = measure(clients[role], address, headers)
                timings.append(elapsed)
            median = statistics.median(timings)
            flag = "!" if median > LIMIT_MS else " "
            cells.append(f"{median:7.1f}{flag} {queries:3d}q")
            rows.append((what, role, median, queries))
        print(f"{what:34} " + "  ".join(cells), flush=True)
    for address, (ms, count) in STREAMED.items():
        print(f"\n{address}: {count:,} rows streamed in {ms:,.0f} ms (last run)")
    slow = [(what, role, ms) for what, role, ms, _ in rows if ms > LIMIT_MS]
    print(f"\n{len(slow)} of {len(rows)} answers over {LIMIT_MS} ms (median of {options.runs}).")
    for what, role, ms in slow:
        print(f"  {what} as {role}: {ms:.0f} ms")


if __name__ == "__main__":
    main()
