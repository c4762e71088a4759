"""Server time and queries of the cleanup screens and their htmx fragments and actions, on the
data set of issue 10 (built by ``bench/pages.py``'s ``setup``: 200 repositories, 50,000 images,
10,000 checks). Actions run inside a transaction that is rolled back, so every run sees the
same data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cleanup .venv/bin/python \\
        bench/cleanup_queue.py [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pages

LIMIT_MS = pages.LIMIT_MS


class Rollback(Exception):
    pass


def addresses() -> list[tuple[str, str, str, dict[str, str], dict[str, object]]]:
    """(what, method, address, headers, form)."""
    from cleanup.models import DeletionCheck, Repository

    htmx = {"HTTP_HX_REQUEST": "true"}
    awaiting = list(
        DeletionCheck.objects.filter(status="awaiting_approval")
        .order_by("-updated_at", "-id")
        .values_list("pk", flat=True)[:50]
    )
    approved = list(
        DeletionCheck.objects.filter(status__in=["approved", "deleted"]).values_list(
            "pk", flat=True
        )[:50]
    )
    repository = Repository.objects.order_by("pk").first()
    assert repository and awaiting
    check = awaiting[0]
    watch = "&".join(f"watch={pk}" for pk in approved) or "watch=1"
    return [
        ("repositories", "get", "/repositories/", {}, {}),
        ("repository", "get", f"/repositories/{repository.pk}/", {}, {}),
        ("queue (awaiting)", "get", "/deletions/", {}, {}),
        ("queue page 40", "get", "/deletions/?page=40", {}, {}),
        ("queue (closed)", "get", "/deletions/?status=closed", {}, {}),
        (
            "queue filtered",
            "get",
            "/deletions/?account=111111111111&min_mb=10&older_days=3",
            {},
            {},
        ),
        ("queue head fragment", "get", "/deletions/", {**htmx, "HTTP_HX_TARGET": "queue-head"}, {}),
        ("queue rows fragment", "get", "/deletions/", {**htmx, "HTTP_HX_TARGET": "queue-rows"}, {}),
        ("queue watch (50 rows)", "get", f"/deletions/watch/?{watch}", htmx, {}),
        ("check", "get", f"/checks/{check}/", {}, {}),
        (
            "check state fragment",
            "get",
            f"/checks/{check}/",
            {**htmx, "HTTP_HX_TARGET": "check-state"},
            {},
        ),
        ("approve 1 (htmx)", "post", "/deletions/approve/", htmx, {"check": [check]}),
        ("approve 50 (htmx)", "post", "/deletions/approve/", htmx, {"check": awaiting}),
        (
            "reject 1 (htmx)",
            "post",
            "/deletions/reject/",
            htmx,
            {"check": [check], "reject_reason": "bench"},
        ),
    ]


def measure(client, method: str, address: str, headers, form) -> tuple[int, float, int]:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    if method == "get":
        return pages.measure(client, address, headers)
    response = None
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        try:
            with transaction.atomic():
                response = client.post(address, form, **headers)
                elapsed = (time.perf_counter() - started) * 1000
                raise Rollback
        except Rollback:
            pass
    return response.status_code, elapsed, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    pages.setup(options.keep)

    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-operator"))
    # wall: server time as measured; cpu: this process's CPU time (the web side alone, which a
    # machine shared with other work does not inflate as much as the wall time).
    print(f"{'cleanup page, fragment or action':36} {'wall ms':>10} {'cpu ms':>9} {'queries':>8}")
    slow = 0
    for what, method, address, headers, form in addresses():
        status, _, _ = measure(client, method, address, headers, form)
        timings, cpu, queries = [], [], 0
        for _ in range(options.runs):
            started = time.process_time()
            status, elapsed, queries = measure(client, method, address, headers, form)
            cpu.append((time.process_time() - started) * 1000)
            timings.append(elapsed)
        median = statistics.median(timings)
        slow += median > LIMIT_MS
        flag = "!" if median > LIMIT_MS else " "
        print(
            f"{what:36} {median:9.1f}{flag} {statistics.median(cpu):9.1f} {queries:8d}  ({status})",
            flush=True,
        )
    print(f"\n{slow} answers over {LIMIT_MS} ms (median of {options.runs}).")


if __name__ == "__main__":
    main()
