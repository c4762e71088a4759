"""Benchmark of the breaker's reaction time: webhook accepted -> UpdateEventSourceMapping called.

    .venv/bin/python bench/breaker_latency.py [--events 200] [--rate 20] [--poll 0.2]
        [--database-url postgres://postgres@127.0.0.1:5432/console_bench_breakers]

What runs, all on loopback: moto's server (in this process, so it can note the moment each
``UpdateEventSourceMapping`` arrives), the console under gunicorn, and one ``qcluster`` (the
worker, ORM broker) with ``AWS_ENDPOINT_URL`` pointing at moto. The database is a fresh SQLite
file in a temporary directory, or the PostgreSQL database named by ``--database-url`` (dropped
and re-created: give it a name of its own).

It creates one queue, function, enabled SQS mapping and Errors alarm per event, registers a
breaker on each (``do_add_breaker``), then for each breaker sets its alarm to ALARM in moto and
POSTs the matching "CloudWatch Alarm State Change" event to ``/webhooks/eventbridge/``, at
``--rate`` events a second. The latency of an event is the time from the console's acceptance
(``InboundEvent.received_at``, stamped by the web server before it answers 202) to the moment
moto receives the ``UpdateEventSourceMapping(Enabled=False)`` for that breaker's mapping.
It prints p50, p90, p99 and max. Target: p99 under 1 s.

The ORM broker is polled: the worker looks for new tasks every ``Q_CLUSTER["poll"]`` seconds
(1 s in the console's settings). The bench runs the console with a settings module that imports
``console.settings`` and sets the poll to ``--poll`` (default 0.2 s, as Q_POLL), the same knob a deployment
on the ORM broker would turn (or use the Redis broker, which blocks instead of polling).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenarios import clients, moto_patches, moto_server  # noqa: E402
from scenarios.lambdas import execution_role, queue_function_mapping_alarm  # noqa: E402

PYTHON = sys.executable
API_KEY = "bench-key-" + uuid.uuid4().hex
ACCOUNT = clients.MOTO_ACCOUNT  # the console's own credentials act there
REGION = "eu-west-1"

BENCH_SETTINGS = """
import os
from console.settings import *  # noqa: F403
Q_CLUSTER = {**Q_CLUSTER, "poll": float(os.environ["BENCH_Q_POLL"])}  # noqa: F405
"""

ADD_BREAKERS = """
import json, sys
from accounts.models import AwsAccount
from breaker import actions
account = AwsAccount.objects.get(account_id="{account}")
for name in json.loads(sys.stdin.read()):
    actions.do_add_breaker(actor="bench", name=name, account=account, region="{region}",
                           function_name=name, alarms=[name + "-errors"])
"""

RECEIVED_AT = """
import json
from webhooks.models import InboundEvent
print(json.dumps({e.dedupe_key: [e.received_at.timestamp(), e.status, e.note]
                  for e in InboundEvent.objects.all()}))
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="alarm events (one breaker each)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="events a second (0: back to back)"
    )
    parser.add_argument(
        "--poll", type=float, default=0.2, help="worker's broker poll (s); 0.2 is Q_POLL's default"
    )
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL (default: SQLite in a temp dir)"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--q-workers", type=int, default=2, help="worker processes of the one qcluster"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="wait for the worker at most this long"
    )
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def recreate_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing a database name that needs quoting: {name!r}")
    with psycopg.connect(
        urlunsplit(parts._replace(path="/postgres")), autocommit=True
    ) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


class UpdateRecorder:
    """Notes when moto receives UpdateEventSourceMapping(Enabled=False), per mapping UUID
    (``on_update`` of ``scenarios.moto_patches.mapping_updates``)."""

    def __init__(self) -> None:
        self.disabled_at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)

    def on_update(self, update: moto_patches.MappingUpdate) -> None:
        if update.enabled is False:
            with self.lock:
                self.disabled_at.setdefault(update.uuid, update.at)
                self.done.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.disabled_at) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.done.wait(remaining)
        return True


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def wait_for_health(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def create_functions(moto_url: str, names: list[str]) -> dict[str, str]:
    """Queue, function, enabled mapping and alarm per name; returns name -> mapping UUID."""
    aws = clients.at_endpoint(moto_url, REGION)
    role = execution_role(aws("iam"), "bench-execution")
    return {
        name: queue_function_mapping_alarm(aws, name, role_arn=role).mapping_uuid for name in names
    }


def alarm_event(alarm: dict) -> dict:
    changed: datetime = alarm["StateUpdatedTimestamp"]
    stamp = changed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{changed.microsecond // 1000:03d}+0000"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": changed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {
                "value": alarm["StateValue"],
                "reason": alarm["StateReason"],
                "timestamp": stamp,
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": stamp},
        },
    }


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def main() -> None:
    args = arguments()
    workdir = Path(tempfile.mkdtemp(prefix="bench-breaker-"))
    (workdir / "bench_breaker_settings.py").write_text(BENCH_SETTINGS)
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    if args.database_url:
        recreate_postgres(args.database_url)

    recorder = UpdateRecorder()
    with ExitStack() as moto:
        moto_url = moto.enter_context(moto_server.in_this_process())
        moto.enter_context(moto_patches.mapping_updates(on_update=recorder.on_update))
        measure(args, workdir, database_url, moto_url, recorder)


def measure(
    args: argparse.Namespace,
    workdir: Path,
    database_url: str,
    moto_url: str,
    recorder: UpdateRecorder,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "Q_REDIS_URL"},
        "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "bench_breaker_settings",
        "BENCH_Q_POLL": str(args.poll),
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_API_KEYS": API_KEY,
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "Q_WORKERS": str(args.q_workers),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    processes: list[subprocess.Popen] = []
    try:
        print(
            f"setting up {args.events} breakers in {workdir} ({'PostgreSQL' if args.database_url else 'SQLite'})"
        )
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "aws_account", "add", ACCOUNT, "--name", "bench", "--regions", REGION)
        names = [f"bench-{number:04d}" for number in range(args.events)]
        mappings = create_functions(moto_url, names)
        manage(
            env,
            "shell",
            "-c",
            ADD_BREAKERS.format(account=ACCOUNT, region=REGION),
            stdin=json.dumps(names),
        )

        web_port = free_port()
        gunicorn = [
            str(Path(PYTHON).parent / "gunicorn"),
            "console.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            str(args.web_workers),
            "--log-level",
            "warning",
        ]
        processes.append(start(gunicorn, env, workdir / "web.log"))
        processes.append(start([PYTHON, "manage.py", "qcluster"], env, workdir / "worker.log"))
        wait_for_health(web_port, processes[0])
        time.sleep(3)  # the cluster's workers start

        cloudwatch = clients.at_endpoint(moto_url, REGION)("cloudwatch")
        connection = http.client.HTTPConnection("127.0.0.1", web_port, timeout=10)
        headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY, "Host": "127.0.0.1"}
        event_of: dict[str, str] = {}
        statuses: list[int] = []
        print(f"sending {args.events} alarm events at {args.rate or 'full'} events/s")
        started = time.monotonic()
        for number, name in enumerate(names):
            if args.rate:
                time.sleep(max(0.0, started + number / args.rate - time.monotonic()))
            alarm = f"{name}-errors"
            cloudwatch.set_alarm_state(
                AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: bench"
            )
            event = alarm_event(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0])
            connection.request(
                "POST", "/webhooks/eventbridge/", body=json.dumps(event), headers=headers
            )
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            event_of[name] = event["id"]
        sent_in = time.monotonic() - started
        finished = recorder.wait_for(args.events, args.timeout)

        received = json.loads(manage(env, "shell", "-c", RECEIVED_AT).strip().splitlines()[-1])
        latencies = []
        for name in names:
            update = recorder.disabled_at.get(mappings[name])
            accepted = received.get(event_of[name])
            if update is not None and accepted is not None:
                latencies.append(update - accepted[0])
        not_accepted = sum(1 for status in statuses if status != 202)
        print(f"sent {len(statuses)} in {sent_in:.1f} s, {not_accepted} not answered 202")
        print(
            f"UpdateEventSourceMapping(Enabled=False) seen for {len(latencies)} of {args.events} breakers"
            + ("" if finished else f" (gave up after {args.timeout:.0f} s)")
        )
        if latencies:
            ms = [value * 1000 for value in latencies]
            print(
                f"acceptance -> UpdateEventSourceMapping: p50 {percentile(ms, 0.50):.0f} ms, "
                f"p90 {percentile(ms, 0.90):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, "
                f"max {max(ms):.0f} ms, mean {statistics.fmean(ms):.0f} ms"
            )
            verdict = (
                "met"
                if percentile(ms, 0.99) < 1000 and len(latencies) == args.events
                else "NOT met"
            )
            print(f"target p99 < 1000 ms: {verdict}")
        failures = [value for value in received.values() if value[1] != "processed"]
        if failures:
            print(f"{len(failures)} inbox event(s) not processed, first: {failures[0]}")
    finally:
        for process in processes:
            stop(process)


if __name__ == "__main__":
    main()
