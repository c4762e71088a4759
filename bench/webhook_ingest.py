"""Benchmark of the EventBridge door: how many events a second the console stores, how fast.

    .venv/bin/python bench/webhook_ingest.py [--events 5000] [--concurrency 16]
        [--database-url postgres://postgres@127.0.0.1:5432/console_bench_webhooks]

It drops and re-creates that database, migrates it, starts the console under gunicorn on
loopback (no worker: events stay `received`, each one also leaves a task row in the ORM broker),
sends N EventBridge events of which 10% are re-sent duplicates, with C requests in flight, and
prints the sustained rate, p50/p99 latency, and rows stored versus distinct events sent.
Target on a 2-core machine: at least 300 requests/s with p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
API_KEY = "bench-key-" + uuid.uuid4().hex
TASK_DEFINITION_PREFIX = "arn:aws:ecs:eu-west-1:111122223333:task-definition/"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/console_bench_webhooks"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="requests to send (default 5000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share re-sent (0.10)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--max-seconds", type=float, default=180, help="stop sending after this")
    return parser.parse_args()


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing a database name that needs quoting: {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def console_environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_API_KEYS": f"older-key-{uuid.uuid4().hex},{API_KEY}",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "console.settings"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen:
    command = [
        str(Path(PYTHON).parent / "gunicorn"),
        "console.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--preload",
        "--log-level",
        "warning",
        "--backlog",
        "512",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop(server)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def make_event(number: int) -> dict:
    """Half alarm state changes, half task definition deregistrations (aws.md shapes)."""
    event_id = str(uuid.uuid4())
    if number % 2:
        return {
            "version": "0",
            "id": event_id,
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "111122223333",
            "time": "2026-11-27T10:15:02Z",
            "region": "eu-west-1",
            "resources": [f"arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-{number}"],
            "detail": {
                "alarmName": f"orders-{number}",
                "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "x"},
                "previousState": {"value": "OK", "reason": "", "timestamp": "x"},
            },
        }
    family = f"orders-{number}:7"
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": "111122223333",
        "time": "2026-11-27T10:20:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventSource": "ecs.amazonaws.com",
            "eventName": "DeregisterTaskDefinition",
            "requestParameters": {"taskDefinition": family},
            "responseElements": {
                "taskDefinition": {
                    "taskDefinitionArn": f"{TASK_DEFINITION_PREFIX}{family}",
                    "status": "INACTIVE",
                    "containerDefinitions": [
                        {"name": "app", "image": "999999999999.dkr.ecr.eu-west-1.amazonaws.com/o:1"}
                    ],
                }
            },
        },
    }


def plan(total: int, duplicate_share: float) -> list[bytes]:
    """Bodies in sending order: each duplicate is re-sent some time after its original."""
    duplicates = int(total * duplicate_share)
    originals = [json.dumps(make_event(number)).encode() for number in range(total - duplicates)]
    order = list(originals)
    rng = random.Random(42)
    for _ in range(duplicates):
        index = rng.randrange(len(originals))
        order.insert(rng.randrange(index + 1, len(order) + 1), originals[index])
    return order


def send_all(port: int, bodies: list[bytes], concurrency: int, max_seconds: float):
    latencies: list[float] = []
    statuses: Counter = Counter()
    sent_ok: set[bytes] = set()
    finished_at: list[float] = []
    lock = threading.Lock()
    position = iter(range(len(bodies)))
    started = time.perf_counter()
    headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY, "Host": "127.0.0.1"}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                index = next(position, None)
            if index is None or time.perf_counter() - started > max_seconds:
                return
            body = bodies[index]
            begin = time.perf_counter()
            try:
                connection.request("POST", "/webhooks/eventbridge/", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                status = type(exc).__name__
            end = time.perf_counter()
            with lock:
                latencies.append(end - begin)
                statuses[status] += 1
                finished_at.append(end - started)
                if status in (200, 202):
                    sent_ok.add(body)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return latencies, statuses, sent_ok, finished_at, elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def count_rows(database_url: str) -> tuple[int, int, Counter]:
    with psycopg.connect(database_url) as connection:
        events = connection.execute("SELECT count(*) FROM webhooks_inboundevent").fetchone()[0]
        queued = connection.execute("SELECT count(*) FROM django_q_ormq").fetchone()[0]
        statuses = Counter(
            dict(
                connection.execute(
                    "SELECT status, count(*) FROM webhooks_inboundevent GROUP BY status"
                ).fetchall()
            )
        )
    return events, queued, statuses


def main() -> int:
    options = arguments()
    env = console_environment(options.database_url)
    print(f"database {options.database_url}: drop, create, migrate", flush=True)
    recreate_database(options.database_url)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    bodies = plan(options.events, options.duplicates)
    distinct = len(set(bodies))
    port = free_port()
    print(
        f"gunicorn console.wsgi on 127.0.0.1:{port}: {options.workers} workers x "
        f"{options.threads} thread(s); no django-q worker running",
        flush=True,
    )
    server = start_gunicorn(env, port, options.workers, options.threads)
    try:
        print(
            f"sending {len(bodies)} events ({len(bodies) - distinct} duplicates re-sent), "
            f"{options.concurrency} in flight",
            flush=True,
        )
        latencies, statuses, sent_ok, finished_at, elapsed = send_all(
            port, bodies, options.concurrency, options.max_seconds
        )
    finally:
        stop(server)
    rows, queued, row_statuses = count_rows(options.database_url)
    per_second = Counter(int(moment) for moment in finished_at)
    full_seconds = [per_second[second] for second in range(1, int(elapsed))]  # skip edges
    print()
    print(f"requests sent        {len(latencies)} in {elapsed:.2f} s")
    print(f"answers              {dict(sorted(statuses.items(), key=str))}")
    print(f"sustained rate       {len(latencies) / elapsed:.0f} requests/s", end="")
    if full_seconds:
        print(f" (slowest full second {min(full_seconds)}, fastest {max(full_seconds)})")
    else:
        print()
    print(f"latency p50          {percentile(latencies, 0.50) * 1000:.1f} ms")
    print(f"latency p99          {percentile(latencies, 0.99) * 1000:.1f} ms")
    mean = statistics.mean(latencies) * 1000
    print(f"latency max          {max(latencies) * 1000:.1f} ms (mean {mean:.1f} ms)")
    print(f"distinct events sent {len(sent_ok)} (of {distinct} planned)")
    print(f"rows stored          {rows} {dict(row_statuses)}")
    print(f"broker task rows     {queued} (ORM broker, one per stored event)")
    ok = rows == len(sent_ok) and not any(isinstance(key, str) for key in statuses)
    print("stored rows equal distinct events: " + ("yes" if rows == len(sent_ok) else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
