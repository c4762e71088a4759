"""Benchmark of inbox processing: accepted -> processed for a CloudTrail burst, and the alarm path
(accepted -> UpdateEventSourceMapping) while such a burst is being drained.

    .venv/bin/python bench/event_drain.py [--events 5000] [--alarms 50] [--concurrency 32]
        [--brokers orm,redis] [--workers 1,2]
        [--database-url postgres://postgres@127.0.0.1:5432/console_bench_drain]
        [--env KEY=VALUE]

(``--env`` passes settings to every console process, e.g. ``--env LOG_LEVEL=INFO`` or
``--env Q_ALARM_WORKERS=2``.)

What runs, all on loopback and all on this one machine: moto's server (in this process, so it can
note the moment each ``UpdateEventSourceMapping`` arrives), the console under gunicorn
(``--web-workers`` gthread workers, threads from gunicorn.conf.py), one ``qcluster`` with
``Q_WORKERS`` = 1 or 2 ("one and two worker processes": the worker processes of the main cluster,
the unit a 2-core worker host runs; the cluster's pusher, monitor and sentinel come on top, and
so does the alarm cluster the ``qcluster`` runs beside it, ``Q_ALARM_WORKERS`` = 1), a
``redis-server`` of its own on a free port for the Redis broker, and PostgreSQL. Each broker x
workers configuration gets a fresh database named after ``--database-url`` with
``_<broker>_w<workers>`` appended (dropped and re-created, dropped again at the end; give it a name
of its own, never CI's).

The CloudTrail events are ``DeregisterTaskDefinition`` calls from the registered account
(123456789012) whose container images live in that account's registry but in repositories the
console has not registered (never synced, so none opted in): the handler parses the event, looks
the account and the repository up and records "ignored: not in a registered opted-in repository".
That is the realistic cost of most of a burst (most deregistered revisions use images nobody opted
in); it schedules nothing and calls no AWS API.

Each configuration runs four phases:

1. preload: N CloudTrail events posted with no worker running, then the cluster starts and drains
   them. Drain capacity = N / (last processed - first processed): the worker alone, the web idle.
2. warm-up: 2 x workers alarms, so every worker process has its AWS client (not measured).
3. live drain: N more CloudTrail events posted (``--concurrency`` in flight) with the worker
   running. Per event accepted (``received_at``, stamped by the web before it answers 202) ->
   processed; events/s drained = N / (last processed - first accepted); also the web's ingest
   rate, and the drain rate after the posting ended (the tail), when the web was the bottleneck.
4. alarms under a burst: N more CloudTrail events posted as in 3 while ``--alarms`` alarm ALARM
   events (one per breaker, each on its own moto Lambda + SQS mapping, registered with
   ``breaker.actions.do_add_breaker``) are posted spread over the time phase 3 took to drain.
   Latency = accepted -> moto receives ``UpdateEventSourceMapping(Enabled=False)`` for the
   breaker's mapping. The backlog (CloudTrail events accepted and not yet processed) at each
   alarm's acceptance is printed, so it is clear the alarms raced a burst.

"Processed" is the moment the row became processed/ignored/failed, noted by a trigger this bench
adds to its own database (``clock_timestamp()`` at the row's update; the drain commits every
0.2 s at most, so it is visible up to that much later). The console's own ``processed_at`` is
the moment the drain started the event; both are printed.

Targets (issue 12): at least 500 events/s drained on one 2-core worker host; alarm -> mapping p99
under 1 s while a 5,000-event burst is drained. Note that here the "worker host" shares its two
cores with the web, PostgreSQL, moto and the load generator.

Every wait has a time bound; the processes are stopped and the databases dropped on exit, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenarios import clients, moto_patches  # noqa: E402
from scenarios.lambdas import execution_role, queue_function_mapping_alarm  # noqa: E402

PYTHON = sys.executable
API_KEY = "bench-key-" + uuid.uuid4().hex
ACCOUNT = "123456789012"  # moto's default account: the console's own credentials act there
REGION = "eu-west-1"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/console_bench_drain"
DONE_STATUSES = ("processed", "ignored", "failed")
DRAIN_TARGET = 500.0  # events/s
ALARM_TARGET = 1.0  # s, p99

ADD_BREAKERS = """
import json, sys
from accounts.models import AwsAccount
from breaker import actions
account = AwsAccount.objects.get(account_id="{account}")
for name in json.loads(sys.stdin.read()):
    actions.do_add_breaker(actor="bench", name=name, account=account, region="{region}",
                           function_name=name, alarms=[name + "-errors"])
"""

# What the worker ran since a moment: django-q's task results (the last Q_CLUSTER save_limit).
TASKS_SINCE = """
import json, sys
from datetime import datetime, timezone
from django_q.models import Task
since = datetime.fromtimestamp(float(sys.stdin.read()), timezone.utc)
tasks = []
for task in Task.objects.filter(started__gte=since).order_by("started"):
    event_id = task.args[0] if task.func.endswith("process_event") and task.args else None
    tasks.append([task.func, task.started.timestamp(), (task.stopped - task.started).total_seconds(),
                  str(task.result)[:80], event_id])
print(json.dumps(tasks))
"""

# The moment each inbox row leaves received/processing, in the handler's own transaction.
DONE_TRIGGER = """
CREATE TABLE bench_done (
    event_id bigint PRIMARY KEY, status text NOT NULL, done_at timestamptz NOT NULL
);
CREATE FUNCTION bench_note_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('processed', 'ignored', 'failed') AND NEW.status IS DISTINCT FROM OLD.status
    THEN
        INSERT INTO bench_done VALUES (NEW.id, NEW.status, clock_timestamp())
        ON CONFLICT (event_id) DO NOTHING;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bench_done AFTER UPDATE OF status ON webhooks_inboundevent
    FOR EACH ROW EXECUTE FUNCTION bench_note_done();
"""

EVENTS_OF_PHASE = """
SELECT e.id, e.dedupe_key, e.kind, e.status, extract(epoch FROM e.received_at),
       extract(epoch FROM e.processed_at), extract(epoch FROM d.done_at)
FROM webhooks_inboundevent e LEFT JOIN bench_done d ON d.event_id = e.id
WHERE e.dedupe_key LIKE %s
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="CloudTrail events per burst")
    parser.add_argument("--alarms", type=int, default=50, help="alarm events during a burst")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--brokers", default="orm,redis", help="comma-separated: orm, redis")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated Q_WORKERS values of the one qcluster"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--poll", type=float, default=0.2, help="Q_POLL for the ORM broker (s)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="bound on every wait for the worker (s)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the console's processes; repeatable",
    )
    options = parser.parse_args()
    if any("=" not in option for option in options.env):
        parser.error("--env takes KEY=VALUE")
    options.brokers = [b.strip() for b in options.brokers.split(",") if b.strip()]
    if not options.brokers or set(options.brokers) - {"orm", "redis"}:
        parser.error("--brokers takes orm and/or redis")
    try:
        options.workers = [int(w) for w in options.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers takes comma-separated numbers")
    if not options.workers or min(options.workers) < 1:
        parser.error("--workers takes numbers of at least 1")
    if not options.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must name PostgreSQL")
    return options


# ---------------------------------------------------------------- processes and databases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with its children
    )


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process (qcluster stops its cluster), SIGKILL to its group if it lingers,
    and SIGKILL to whatever of its group is left."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name or not name.replace("_", "").isalnum() or len(name) > 63:
        raise SystemExit(f"refusing a database name that needs quoting: {name!r}")
    if name == "console_ci":
        raise SystemExit("refusing CI's database")
    return name


def admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def recreate_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def drop_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True, connect_timeout=10) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def manage(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def wait_until(what: str, check: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    print(f"  ! {what}: not within {timeout:.0f} s", flush=True)
    return False


def wait_for_health(port: int, server: subprocess.Popen) -> None:
    def answers() -> bool:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            return connection.getresponse().status == 200
        except OSError:
            return False

    if not wait_until("gunicorn answers /healthz", answers, 30, 0.2):
        raise SystemExit("gunicorn did not answer /healthz within 30 s")


# ---------------------------------------------------------------- moto


class UpdateRecorder:
    """Notes when moto receives UpdateEventSourceMapping(Enabled=False), per mapping UUID
    (``on_update`` of ``scenarios.moto_patches.mapping_updates``)."""

    def __init__(self) -> None:
        self.disabled_at: dict[str, float] = {}
        self.lock = threading.Lock()

    def on_update(self, update: moto_patches.MappingUpdate) -> None:
        if update.enabled is False:
            with self.lock:
                self.disabled_at.setdefault(update.uuid, update.at)

    def seen(self, mappings: list[str]) -> int:
        with self.lock:
            return sum(1 for mapping in mappings if mapping in self.disabled_at)

    def reset(self) -> None:
        with self.lock:
            self.disabled_at.clear()


def moto_post(port: int, path: str, body: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body=json.dumps(body))
    response = connection.getresponse()
    response.read()
    if response.status not in (200, 201):
        raise SystemExit(f"moto {path} answered {response.status}")


def create_functions(moto_url: str, names: list[str]) -> dict[str, str]:
    """Queue, function, enabled SQS mapping and Errors alarm per name; name -> mapping UUID."""
    aws = clients.at_endpoint(moto_url, REGION)
    role = execution_role(aws("iam"), "bench-execution")
    return {
        name: queue_function_mapping_alarm(aws, name, role_arn=role).mapping_uuid for name in names
    }


# ---------------------------------------------------------------- events


def cloudtrail_event(event_id: str, number: int) -> bytes:
    """DeregisterTaskDefinition from the registered account; its image is in that account's
    registry, in a repository the console has not registered (tests/webhooks/shapes.py shape)."""
    family = f"bench-svc-{number % 250}"
    revision = number // 250 + 1
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{family}:build-{revision}"
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ecs",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "ecs.amazonaws.com",
                "eventName": "DeregisterTaskDefinition",
                "awsRegion": REGION,
                "recipientAccountId": ACCOUNT,
                "requestParameters": {"taskDefinition": f"{family}:{revision}"},
                "responseElements": {
                    "taskDefinition": {
                        "taskDefinitionArn": arn,
                        "family": family,
                        "revision": revision,
                        "status": "INACTIVE",
                        "containerDefinitions": [{"name": "app", "image": image}],
                    }
                },
            },
        }
    ).encode()


def alarm_event(event_id: str, alarm: dict) -> bytes:
    changed: datetime = alarm["StateUpdatedTimestamp"]
    stamp = changed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{changed.microsecond // 1000:03d}+0000"
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
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
    ).encode()


class Door:
    """POSTs to /webhooks/eventbridge/ over one keep-alive connection."""

    headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY, "Host": "127.0.0.1"}

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: bytes) -> int | str:
        """The answer's status (or the error's name). A kept-alive connection the server closed
        meanwhile is opened again once: a re-sent event that was stored answers 200 duplicate."""
        for attempt in range(2):
            try:
                self.connection.request("POST", "/webhooks/eventbridge/", body, self.headers)
                response = self.connection.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                if attempt:
                    return type(exc).__name__
        raise AssertionError("unreachable")


def post_all(
    port: int, bodies: list[bytes], concurrency: int, max_seconds: float
) -> tuple[dict, float]:
    """Send every body, ``concurrency`` in flight; returns (status -> count, seconds)."""
    statuses: dict = {}
    lock = threading.Lock()
    position = iter(range(len(bodies)))
    started = time.monotonic()

    def worker() -> None:
        door = Door(port)
        while True:
            with lock:
                index = next(position, None)
            if index is None or time.monotonic() - started > max_seconds:
                return
            status = door.post(bodies[index])
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 60)
    return statuses, time.monotonic() - started


def stored(statuses: dict) -> int:
    """Events stored by a burst: 202 accepted, and 200 for one re-sent after a lost answer."""
    return statuses.get(202, 0) + statuses.get(200, 0)


# ---------------------------------------------------------------- measurements

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds spent by the worker's and the web's process groups and by the PostgreSQL
    backends serving the bench's database (the bench's own short polling connections close
    before they are counted), between ``start()`` and ``stop()``."""

    def __init__(self, database_url: str, groups: dict[str, list[int]]) -> None:
        self.database_url = database_url
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}

    def sample(self) -> dict[str, dict[int, float]]:
        sample = {
            name: {p: process_cpu(p) for pgid in pgids for p in group_pids(pgid)}
            for name, pgids in self.groups.items()
        }
        with psycopg.connect(self.database_url) as connection:
            backends = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        sample["db"] = {pid: process_cpu(pid) for (pid,) in backends}
        return sample

    def start(self) -> None:
        self.before = self.sample()
        self.own = time.process_time()

    def stop(self) -> dict[str, float]:
        after = self.sample()
        spent = {
            name: sum(cpu - self.before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in after.items()
        }
        spent["bench"] = time.process_time() - self.own  # the load generator and moto
        return spent


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class Row:
    id: int
    key: str
    kind: str
    status: str
    received: float
    processed: float | None
    done: float | None


def phase_rows(database_url: str, prefix: str) -> list[Row]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(EVENTS_OF_PHASE, (prefix + "%",)).fetchall()
    return [
        Row(
            id_,
            key,
            kind,
            status,
            float(received),
            None if processed is None else float(processed),
            None if done is None else float(done),
        )
        for id_, key, kind, status, received, processed, done in rows
    ]


def done_count(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT count(*) FROM bench_done").fetchone()[0]


@dataclass
class Result:
    broker: str
    workers: int
    capacity: float = math.nan
    ingest: float = math.nan
    drained: float = math.nan
    tail_rate: float = math.nan
    tail_events: int = 0
    p50: float = math.nan
    p99: float = math.nan
    claim_p50: float = math.nan
    claim_p99: float = math.nan
    alarm_p50: float = math.nan
    alarm_p99: float = math.nan
    alarm_max: float = math.nan
    alarms_seen: int = 0
    alarms_sent: int = 0
    burst_drained: float = math.nan
    backlog_at_alarm: list[int] = field(default_factory=list)
    cpu_preload: dict[str, float] = field(default_factory=dict)  # ms per event
    cpu_live: dict[str, float] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def drain_met(self) -> bool:
        return self.drained >= DRAIN_TARGET

    @property
    def alarm_met(self) -> bool:
        return self.alarms_seen == self.alarms_sent > 0 and self.alarm_p99 < ALARM_TARGET


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:.0f}"


def rate(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


# ---------------------------------------------------------------- one configuration


class Bench:
    def __init__(self, options: argparse.Namespace, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.recorder = UpdateRecorder()
        self.processes: list[subprocess.Popen] = []
        self.databases: list[str] = []
        self.redis: subprocess.Popen | None = None
        self.redis_port = 0
        self.moto: ThreadedMotoServer | None = None
        self.moto_port = 0
        self.moto_patches = ExitStack()

    # -- shared services

    def start_moto(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()
        self.moto_patches.enter_context(
            moto_patches.mapping_updates(on_update=self.recorder.on_update)
        )

    def start_redis(self) -> None:
        self.redis_port = free_port()
        self.redis = start(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            None,
            self.workdir / "redis.log",
        )

        def answers() -> bool:
            if self.redis.poll() is not None:
                raise SystemExit(f"redis-server exited with {self.redis.returncode}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.redis_port)) == 0

        if not wait_until("redis-server listens", answers, 15, 0.1):
            raise SystemExit("redis-server did not start")

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        self.processes.clear()
        if self.redis is not None:
            stop(self.redis)
        if self.moto is not None:
            with suppress(Exception):
                self.moto.stop()
        self.moto_patches.close()
        for url in self.databases:
            try:
                drop_database(url)
            except psycopg.Error as exc:
                print(f"could not drop {database_name(url)}: {exc}", file=sys.stderr)

    # -- one configuration

    def run(self, broker: str, workers: int, index: int) -> Result:
        options = self.options
        result = Result(broker, workers)
        parts = urlsplit(options.database_url)
        name = f"{database_name(options.database_url)}_{broker}_w{workers}"
        database_url = urlunsplit(parts._replace(path=f"/{name}"))
        database_name(database_url)
        print(f"\n== broker {broker}, Q_WORKERS={workers}, database {name}", flush=True)
        self.databases.append(database_url)
        recreate_database(database_url)

        moto_url = f"http://127.0.0.1:{self.moto_port}"
        moto_post(self.moto_port, "/moto-api/reset", {})
        moto_post(self.moto_port, "/moto-api/config", {"lambda": {"use_docker": False}})
        self.recorder.reset()
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AWS_", "DJANGO_", "CLEANUP_", "Q_", "WEBHOOK_"))
            },
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "WEBHOOK_API_KEYS": API_KEY,
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "Q_WORKERS": str(workers),
            "Q_POLL": str(options.poll),
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **dict(option.split("=", 1) for option in options.env),
        }
        if broker == "redis":
            env["Q_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/{index % 16}"
            import redis

            redis.Redis.from_url(env["Q_REDIS_URL"]).flushdb()

        warm = 2 * workers
        names = [f"bench-{number:03d}" for number in range(options.alarms + warm)]
        print(f"  setting up: migrate, account, {len(names)} breakers on moto", flush=True)
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "aws_account", "add", ACCOUNT, "--name", "bench", "--regions", REGION)
        mappings = create_functions(moto_url, names)
        manage(
            env,
            "shell",
            "-c",
            ADD_BREAKERS.format(account=ACCOUNT, region=REGION),
            stdin=json.dumps(names),
        )
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(DONE_TRIGGER)

        web_port = free_port()
        gunicorn = [
            str(Path(PYTHON).parent / "gunicorn"),
            "console.wsgi",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            str(options.web_workers),
            "--log-level",
            "warning",
            "--backlog",
            "512",
        ]
        tag = f"{broker}-w{workers}"
        web = start(gunicorn, env, self.workdir / f"web-{tag}.log")
        self.processes.append(web)
        wait_for_health(web_port, web)
        accepted = 0

        def post_burst(prefix: str) -> tuple[dict, float]:
            bodies = [
                cloudtrail_event(f"{prefix}{number:05d}-{uuid.uuid4().hex[:8]}", number)
                for number in range(options.events)
            ]
            return post_all(web_port, bodies, options.concurrency, options.timeout)

        def wait_done(total: int, what: str) -> bool:
            return wait_until(what, lambda: done_count(database_url) >= total, options.timeout)

        def per_event(cpu: dict[str, float], events: int) -> dict[str, float]:
            return {name: seconds * 1000 / max(events, 1) for name, seconds in cpu.items()}

        # 1. preload, then the worker starts and drains
        result.load.append(os.getloadavg()[0])
        meter = CpuMeter(database_url, {"web": [web.pid]})
        meter.start()
        statuses, seconds = post_burst("p1-")
        result.cpu_preload = per_event(meter.stop(), stored(statuses))
        accepted += stored(statuses)
        print(
            f"  1 preload: {options.events} posted in {seconds:.1f} s "
            f"({options.events / seconds:.0f}/s) {statuses}; starting the worker",
            flush=True,
        )
        worker = start([PYTHON, "manage.py", "qcluster"], env, self.workdir / f"worker-{tag}.log")
        self.processes.append(worker)
        clusters = [worker]  # the qcluster runs the alarm cluster as a child: one group
        if not wait_done(accepted, "preloaded events drained"):
            result.problems.append("preload not drained")
        rows = [r for r in phase_rows(database_url, "p1-") if r.done is not None]
        if len(rows) > 1:
            first, last = min(r.done for r in rows), max(r.done for r in rows)
            result.capacity = len(rows) / max(last - first, 1e-6)
        print(f"    drained {len(rows)} at {rate(result.capacity)} events/s", flush=True)

        # 2. warm-up alarms: each worker process gets its AWS client
        cloudwatch = clients.at_endpoint(moto_url, REGION)("cloudwatch")
        door = Door(web_port)

        def send_alarm(name: str, key: str) -> int | str:
            alarm = f"{name}-errors"
            cloudwatch.set_alarm_state(
                AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: bench"
            )
            described = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
            return door.post(alarm_event(key, described))

        warm_names, alarm_names = names[:warm], names[warm:]
        for name in warm_names:
            if send_alarm(name, f"w2-{name}-{uuid.uuid4().hex[:8]}") in (200, 202):
                accepted += 1
        wait_until(
            "warm-up alarms disabled their mappings",
            lambda: self.recorder.seen([mappings[n] for n in warm_names]) == warm,
            options.timeout,
        )
        wait_done(accepted, "warm-up alarms processed")

        # 3. live drain
        meter = CpuMeter(database_url, {"worker": [c.pid for c in clusters], "web": [web.pid]})
        meter.start()
        statuses, seconds = post_burst("p3-")
        accepted += stored(statuses)
        print(
            f"  3 live: {options.events} posted in {seconds:.1f} s "
            f"({options.events / seconds:.0f}/s) {statuses}",
            flush=True,
        )
        if not wait_done(accepted, "live burst drained"):
            result.problems.append("live burst not drained")
        result.cpu_live = per_event(meter.stop(), stored(statuses))
        rows = phase_rows(database_url, "p3-")
        done = [r for r in rows if r.done is not None]
        window = 1.0
        if done:
            first_in = min(r.received for r in rows)
            last_in = max(r.received for r in rows)
            last_out = max(r.done for r in done)
            window = max(last_out - first_in, 1e-6)
            result.ingest = len(rows) / max(last_in - first_in, 1e-6)
            result.drained = len(done) / window
            tail = [r for r in done if r.done > last_in]
            result.tail_events = len(tail)
            if len(tail) > 1:
                result.tail_rate = len(tail) / max(last_out - last_in, 1e-6)
            latencies = [r.done - r.received for r in done]
            result.p50, result.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            claimed = [r.processed - r.received for r in done if r.processed is not None]
            result.claim_p50 = percentile(claimed, 0.5)
            result.claim_p99 = percentile(claimed, 0.99)
        if len(done) != options.events:
            result.problems.append(f"live: {len(done)} of {options.events} processed")
        print(
            f"    accepted at {rate(result.ingest)}/s, drained {len(done)} at "
            f"{rate(result.drained)} events/s (first accepted -> last processed); "
            f"{result.tail_events} processed after the last acceptance"
            + (f" at {rate(result.tail_rate)}/s" if result.tail_events > 1 else ""),
            flush=True,
        )
        print(
            f"    accepted -> processed p50 {ms(result.p50)} ms, p99 {ms(result.p99)} ms "
            f"(the console's processed_at, the batch's claim: p50 {ms(result.claim_p50)} ms, "
            f"p99 {ms(result.claim_p99)} ms)",
            flush=True,
        )

        # 4. alarms spread over a burst being drained
        phase_started = time.time()
        interval = min(max(window / max(options.alarms, 1), 0.02), 2.0)
        sent: dict[str, str] = {}
        alarm_statuses: dict = {}
        stop_alarms = threading.Event()

        def alarms() -> None:
            started = time.monotonic()
            for number, name in enumerate(alarm_names):
                delay = started + number * interval - time.monotonic()
                if stop_alarms.wait(max(0.0, delay)):
                    return
                key = f"a4-{name}-{uuid.uuid4().hex[:8]}"
                status = send_alarm(name, key)
                alarm_statuses[status] = alarm_statuses.get(status, 0) + 1
                if status in (200, 202):
                    sent[name] = key

        print(
            f"  4 burst + {len(alarm_names)} alarms, one every {interval * 1000:.0f} ms",
            flush=True,
        )
        alarm_thread = threading.Thread(target=alarms, daemon=True)
        alarm_thread.start()
        statuses, seconds = post_burst("p4-")
        alarm_thread.join(interval * len(alarm_names) + 60)
        stop_alarms.set()
        accepted += stored(statuses) + len(sent)
        result.alarms_sent = len(alarm_names)
        if not wait_done(accepted, "burst and alarms processed"):
            result.problems.append("burst with alarms not drained")
        wait_until(
            "alarms disabled their mappings",
            lambda: self.recorder.seen([mappings[n] for n in sent]) == len(sent),
            options.timeout,
        )
        burst = phase_rows(database_url, "p4-")
        alarm_rows = {r.key: r for r in phase_rows(database_url, "a4-")}
        tasks = json.loads(
            manage(env, "shell", "-c", TASKS_SINCE, stdin=str(phase_started))
            .strip()
            .splitlines()[-1]
        )
        # An alarm event its own process_event task handled (the task returned a status); the
        # others were taken by a drain batch before their task ran (it returned None).
        by_own_task = {
            event_id for func, _, _, outcome, event_id in tasks if event_id and outcome != "None"
        }
        latencies, waits, handled, own, by_drain = [], [], [], [], 0
        for name, key in sent.items():
            update = self.recorder.disabled_at.get(mappings[name])
            row = alarm_rows.get(key)
            if update is not None and row is not None:
                latencies.append(update - row.received)
                if row.processed is not None:
                    waits.append(row.processed - row.received)
                    handled.append(update - row.processed)
                    if row.id in by_own_task:
                        own.append(row.processed - row.received)
                by_drain += row.id not in by_own_task
                result.backlog_at_alarm.append(
                    sum(
                        1
                        for r in burst
                        if r.received <= row.received and (r.done is None or r.done > row.received)
                    )
                )
        result.alarms_seen = len(latencies)
        result.alarm_p50 = percentile(latencies, 0.5)
        result.alarm_p99 = percentile(latencies, 0.99)
        result.alarm_max = max(latencies) if latencies else math.nan
        burst_done = [r for r in burst if r.done is not None]
        if burst_done:
            result.burst_drained = len(burst_done) / max(
                max(r.done for r in burst_done) - min(r.received for r in burst), 1e-6
            )
        backlog = sorted(result.backlog_at_alarm)
        print(
            f"    burst posted in {seconds:.1f} s {statuses}, drained at "
            f"{rate(result.burst_drained)} events/s; alarms {alarm_statuses}",
            flush=True,
        )
        print(
            f"    alarm -> UpdateEventSourceMapping for {len(latencies)} of {len(alarm_names)}: "
            f"p50 {ms(result.alarm_p50)} ms, p99 {ms(result.alarm_p99)} ms, "
            f"max {ms(result.alarm_max)} ms; backlog at the alarms' acceptance: "
            + (
                f"min {backlog[0]}, median {backlog[len(backlog) // 2]}, max {backlog[-1]}"
                if backlog
                else "-"
            ),
            flush=True,
        )
        slow = sorted(latencies, reverse=True)[:5]
        print(f"    slowest alarms (ms): {', '.join(ms(v) for v in slow)}", flush=True)
        print(
            f"    alarm accepted -> claimed (queue wait) p50 {ms(percentile(waits, 0.5))} ms, "
            f"p99 {ms(percentile(waits, 0.99))} ms; claimed -> UpdateEventSourceMapping "
            f"p50 {ms(percentile(handled, 0.5))} ms, p99 {ms(percentile(handled, 0.99))} ms; "
            f"{by_drain} of {len(latencies)} taken by a drain batch, the rest by their own task",
            flush=True,
        )
        print(
            f"    queue wait of the alarms that ran as their own task: p50 {ms(percentile(own, 0.5))}"
            f" ms, p99 {ms(percentile(own, 0.99))} ms",
            flush=True,
        )
        summary: dict[str, list[float]] = {}
        for func, _, seconds, _, _ in tasks:
            summary.setdefault(func.rsplit(".", 1)[-1], []).append(seconds)
        print(
            "    worker tasks during phase 4 (enqueued -> finished): "
            + "; ".join(
                f"{func} x{len(values)} ({sum(values):.1f} s, longest {max(values):.2f} s)"
                for func, values in sorted(summary.items())
            ),
            flush=True,
        )
        for func, started, seconds, outcome, _ in sorted(tasks, key=lambda t: -t[2])[:3]:
            print(
                f"      longest: {func} enqueued at +{started - phase_started:.1f} s, finished"
                f" {seconds:.2f} s later"
                f" -> {outcome}",
                flush=True,
            )
        result.load.append(os.getloadavg()[0])
        print(
            "    CPU ms per event: door alone (preload) "
            + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu_preload.items())
            + "; live (door + drain) "
            + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu_live.items())
            + f"; load average {result.load[0]:.1f} -> {result.load[-1]:.1f}",
            flush=True,
        )
        failed = [r for r in phase_rows(database_url, "") if r.status not in DONE_STATUSES[:2]]
        if failed:
            result.problems.append(f"{len(failed)} event(s) not processed, e.g. {failed[0]}")

        for process in [*clusters, web]:
            stop(process)
            self.processes.remove(process)
        drop_database(database_url)
        self.databases.remove(database_url)
        return result


def table(results: list[Result]) -> str:
    header = (
        "| broker | worker processes | events/s drained (live) | drain capacity (preloaded) "
        "| accept->processed p50 / p99 | alarm->mapping p50 / p99 / max "
        "| targets met (>=500/s; p99<1 s) |"
    )
    lines = [header, "|" + "---|" * 7]
    for r in results:
        met = (
            f"{'yes' if r.drain_met else 'NO'}; {'yes' if r.alarm_met else 'NO'}"
            if not r.problems
            else "NO (" + "; ".join(r.problems) + ")"
        )
        lines.append(
            f"| {r.broker} | {r.workers} | {rate(r.drained)} (web {rate(r.ingest)}/s) "
            f"| {rate(r.capacity)} | {ms(r.p50)} / {ms(r.p99)} ms "
            f"| {ms(r.alarm_p50)} / {ms(r.alarm_p99)} / {ms(r.alarm_max)} ms "
            f"({r.alarms_seen}/{r.alarms_sent}) | {met} |"
        )
    return "\n".join(lines)


def cpu_table(results: list[Result]) -> str:
    lines = [
        "| broker | worker processes | CPU ms/event: worker | web | PostgreSQL (door + drain) "
        "| PostgreSQL door alone | bench (client, moto) | load average (1 min) during the run |",
        "|" + "---|" * 8,
    ]
    for r in results:
        live, door = r.cpu_live, r.cpu_preload
        lines.append(
            f"| {r.broker} | {r.workers} | {live.get('worker', math.nan):.2f} "
            f"| {live.get('web', math.nan):.2f} | {live.get('db', math.nan):.2f} "
            f"| {door.get('db', math.nan):.2f} | {live.get('bench', math.nan):.2f} | "
            + " -> ".join(f"{value:.1f}" for value in r.load)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    options = arguments()

    def terminated(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    # Ctrl-C stops the bench even when it was started with SIGINT ignored (``cmd &``, nohup).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    bench = Bench(options, workdir)
    results: list[Result] = []
    print(
        f"event drain bench: {options.events} CloudTrail events a burst, {options.alarms} alarms, "
        f"{options.concurrency} in flight, web {options.web_workers} gunicorn workers, "
        f"{os.cpu_count()} CPUs; logs in {workdir}",
        flush=True,
    )
    try:
        bench.start_moto()
        if "redis" in options.brokers:
            bench.start_redis()
        for index, (broker, workers) in enumerate(
            (b, w) for b in options.brokers for w in options.workers
        ):
            results.append(bench.run(broker, workers, index))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping processes, dropping databases", file=sys.stderr)
        return 130
    finally:
        bench.close()
        if results:
            print("\n" + table(results) + "\n\n" + cpu_table(results), flush=True)
    ok = all(r.drain_met and r.alarm_met and not r.problems for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
