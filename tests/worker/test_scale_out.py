"""Two worker hosts share the work: two ``qcluster`` processes (two workers each) on one database
and one broker, with a web server (gunicorn) in front and moto's server for AWS.

After the set-up (AWS resources in moto with boto3; the account, the inventory, the checks and
the breakers with the console's actions), nothing calls a task: the work arrives as it does in
production, as webhook deliveries, an operator's clicks, and the workers' own schedules.

- a burst of mixed work (events, due checks, approvals, half-open breakers): every piece done
  exactly once, by both clusters, and nothing left over;
- SIGKILL to one worker host (its ``qcluster``, both clusters) in the middle of a drain: the
  events it held are taken over by the other once their lease ends, within a minute of the
  kill, each still done once.

On PostgreSQL (CI) the clusters share Redis, as two hosts would, and claims use
``SELECT ... FOR UPDATE SKIP LOCKED``. On SQLite (one machine by nature) the burst runs on the
ORM broker, whose queue table the clusters then share; the kill is PostgreSQL's alone (see its
skip reason).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
import requests

from scenarios import clients, ecr, ecs, moto_patches
from scenarios.lambdas import execution_role, queue_function_mapping_alarm
from tests.breaker.events import eventbridge_alarm
from tests.conftest import PASSWORD
from tests.processes import (
    PYTHON,
    Console,
    broker_env,
    moto_in_this_process,
    own_database,
    sign_in,
    wait_for,
)
from tests.webhooks.shapes import config_item_event, deregistration_event

ACCOUNT = clients.MOTO_ACCOUNT  # the console's own credentials act there
FOREIGN = "999999999999"  # a registry the console does not know
REGION = "eu-west-1"
API_KEY = "scale-out-" + uuid.uuid4().hex
REPOSITORIES = ["svc-a", "svc-b", "svc-c", "svc-d"]
BREAKERS = ["orders", "billing", "mailer"]
# Per repository: images with a check due now (some of them used by an ACTIVE task definition),
# images whose check awaits approval (the operator approves them during the burst), images that
# a deregistration event of the burst names (their checks are opened by the events).
DUE, IN_USE, TO_APPROVE, NAMED = 50, 5, 5, 25
PROBE_SECONDS = 1.0  # each probe's Lambda invocation lasts this long in moto
HEARTBEATS = "SELECT host, pid FROM console_workerheartbeat"

SET_UP = """
import json
import boto3
from django.contrib.auth.models import Group, User
from accounts import actions as accounts
from breaker import actions as breakers
from breaker.models import Breaker
from cleanup import actions as cleanup
from cleanup.models import Image

world = json.loads({world!r})
account = accounts.do_add_account(
    actor="set-up", account_id="{account}", name="shared", environment="shared", role_arn="",
    regions=["{region}"], usage_regions=["{region}"], is_registry=True,
)
cleanup.do_sync_inventory()

def request_checks(digests):
    for image in Image.objects.filter(digest__in=digests):
        cleanup.do_request_check(image, actor="set-up")

# Decided now: these wait for the operator's approval, which comes during the burst.
request_checks(world["to_approve"])
cleanup.do_run_due_checks()
to_approve = list(Image.objects.filter(digest__in=world["to_approve"]).values_list("checks", flat=True))
# Due now: the workers' `cleanup.run-due` schedule decides them.
request_checks(world["due"])

# Breakers half-open, as after an alarm that went off and cleared: the reconcile pass reads the
# alarms in moto (ALARM: open, mapping disabled; OK: half-open).
for name in world["breakers"]:
    breakers.do_add_breaker(
        actor="set-up", name=name, account=account, region="{region}", function_name=name,
        alarms=[name + "-errors"], successes_to_close=3, probe_interval_seconds=1,
    )
cloudwatch = boto3.client("cloudwatch", region_name="{region}")
for state in ("ALARM", "OK"):
    for name in world["breakers"]:
        cloudwatch.set_alarm_state(AlarmName=name + "-errors", StateValue=state, StateReason="set-up")
    breakers.do_reconcile()
operator = User.objects.create_user(username="oscar", password="{password}")
operator.groups.add(Group.objects.get(name="operator"))
print(json.dumps({{
    "to_approve": to_approve,
    "breakers": dict(Breaker.objects.values_list("name", "id")),
    "states": sorted(set(Breaker.objects.values_list("state", "mapping_state"))),
}}))
"""

OUTCOME = """
import json
from audit.models import AuditEvent
from breaker.models import Breaker, Probe
from cleanup.models import DeletionCheck
from webhooks.models import DrainRequest, InboundEvent

events = [
    {"id": e.id, "status": e.status, "attempts": e.attempts, "claim": e.claim,
     "claimed": e.claimed_at is not None,
     "done": [h["what"] for h in e.history if h["what"] != "received"]}
    for e in InboundEvent.objects.all()
]
# What the events' handlers did: a second run of a handler would reschedule its check.
opened = list(
    AuditEvent.objects.filter(actor="webhook:eventbridge", target_type="deletion_check")
    .values_list("action", "target_id")
)
checks = [
    {"id": c.id, "digest": c.image.digest, "status": c.status, "claim": c.claim,
     "decisions": [t["status"] for t in c.timeline if t["actor"] == "worker"]}
    for c in DeletionCheck.objects.select_related("image")
]
deleted = list(AuditEvent.objects.filter(action="image.deleted").values_list("target_id", flat=True))
probes = [
    {"breaker": p.breaker.name, "at": p.at.timestamp(), "ms": p.duration_ms, "outcome": p.outcome}
    for p in Probe.objects.select_related("breaker").order_by("at")
]
breakers = {
    b.name: {"state": b.state, "mapping": b.mapping_state, "lease": b.probe_lease_until is not None}
    for b in Breaker.objects.all()
}
drain = [str(d.requested_at) for d in DrainRequest.objects.exclude(requested_at=None)]
print(json.dumps({"events": events, "opened": opened, "checks": checks, "deleted": deleted,
                  "probes": probes, "breakers": breakers, "drain": drain}))
"""


class World:
    """What is in AWS (moto) before the console starts."""

    def __init__(self, endpoint: str) -> None:
        self.client = clients.at_endpoint(endpoint, REGION)
        self.pushed = 0
        self.due: list[str] = []
        self.in_use: list[str] = []
        self.to_approve: list[str] = []
        self.named: list[str] = []  # image URIs by tag, each named by one deregistration event
        self.named_digests: list[str] = []
        self.queues: dict[str, str] = {}

    def push(self, repository: str) -> tuple[str, str]:
        self.pushed += 1
        tag = f"v{self.pushed}"
        manifest = ecr.image_manifest(str(self.pushed), 1000 + self.pushed)
        return tag, ecr.push_image(self.client("ecr"), repository, tag, manifest=manifest)

    def build_registry(self) -> None:
        for repository in REPOSITORIES:
            ecr.create_repository(self.client("ecr"), repository)
            uri = ecr.image_uri(ACCOUNT, REGION, repository)
            used = []
            for number in range(DUE):
                tag, digest = self.push(repository)
                self.due.append(digest)
                if number < IN_USE:
                    self.in_use.append(digest)
                    used.append(f"{uri}:{tag}")
            for _ in range(TO_APPROVE):
                self.to_approve.append(self.push(repository)[1])
            for _ in range(NAMED):
                tag, digest = self.push(repository)
                self.named.append(f"{uri}:{tag}")
                self.named_digests.append(digest)
            # A service still runs these: an ACTIVE task definition names them by tag.
            ecs.register_task_definition(self.client("ecs"), f"{repository}-live", used)

    def build_breakers(self) -> None:
        """Per breaker: a queue with messages waiting, a function on it through a mapping, the
        alarm on its errors."""
        role = execution_role(self.client("iam"), "fn")
        for name in BREAKERS:
            built = queue_function_mapping_alarm(self.client, name, role_arn=role)
            self.queues[name] = built.queue_url

    def queue_messages(self, count: int) -> None:
        """Messages that arrived while the mappings were disabled: what the probes send."""
        for name, url in self.queues.items():
            for number in range(count):
                self.client("sqs").send_message(QueueUrl=url, MessageBody=f"{name}-{number}")

    def digests(self) -> set[str]:
        return {
            digest
            for repository in REPOSITORIES
            for digest in ecr.image_digests(self.client("ecr"), repository)
        }

    def as_json(self) -> str:
        return json.dumps(
            {"due": self.due, "to_approve": self.to_approve, "breakers": BREAKERS},
        )


def burst_of_events(world: World) -> list[dict]:
    """500 deliveries: deregistrations naming registered images (each opens a check), and ones
    naming a foreign registry's images, Config item changes, and alarms no breaker watches."""
    events = [
        deregistration_event(f"live-{number}:1", account=ACCOUNT, image=image)
        for number, image in enumerate(world.named)
    ]
    events += [
        deregistration_event(
            f"foreign-{number}:1",
            account=ACCOUNT,
            image=f"{FOREIGN}.dkr.ecr.{REGION}.amazonaws.com/other:{number}",
        )
        for number in range(150)
    ]
    events += [config_item_event() for _ in range(200)]
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:nobody-watches-this"
    events += [
        eventbridge_alarm(alarm_arn, "ALARM" if number % 2 else "OK", datetime.now().astimezone())
        for number in range(50)
    ]
    assert len(events) == 500
    random.Random(12).shuffle(events)
    return events


def post_event(web: str, event: dict) -> int:
    response = requests.post(
        f"{web}/webhooks/eventbridge/", json=event, headers={"X-Api-Key": API_KEY}, timeout=30
    )
    return response.status_code


def operator_clicks(web: str, check_ids: list[int], breaker_ids: list[int]) -> list[int]:
    """The operator approves the checks one by one, and asks for a probe of every breaker three
    times in a row (impatient), while the events pour in. Returns the answers' statuses."""
    browser = sign_in(web)
    token = browser.cookies["csrftoken"]
    statuses = []
    for check_id in check_ids:
        answer = browser.post(
            f"{web}/deletions/approve/",
            data={"check": str(check_id), "csrfmiddlewaretoken": token},
            allow_redirects=False,
            timeout=30,
        )
        statuses.append(answer.status_code)
    for _ in range(3):
        for breaker_id in breaker_ids:
            answer = browser.post(
                f"{web}/breakers/{breaker_id}/probe/",
                data={"csrfmiddlewaretoken": token},
                allow_redirects=False,
                timeout=30,
            )
            statuses.append(answer.status_code)
    return statuses


def start_clusters(console: Console, names: list[str]) -> None:
    """Each ``qcluster`` runs two clusters (the main one and the alarm cluster): two beats."""
    for name in names:
        console.start(name, PYTHON, "manage.py", "qcluster")
    wait_for(
        f"{len(names)} workers beat",
        lambda: len(console.sql(HEARTBEATS)) == 2 * len(names),
        timeout=60,
        log=console.logs,
    )


def tasks_started(console: Console, name: str) -> int:
    """How many tasks the cluster's workers started (django-q logs one line for each)."""
    return len(re.findall(r" processing ", (console.dir / f"{name}.log").read_text()))


@pytest.fixture
def slow_probes():
    """Each Lambda invocation lasts PROBE_SECONDS in moto (in this process), so two probes of one
    breaker would overlap in time if two workers ran them."""
    with moto_patches.slow_lambda(PROBE_SECONDS):
        yield


def console_for(tmp_path: Path, database_url: str, moto: str, broker: dict[str, str]) -> Console:
    return Console(
        tmp_path,
        database_url,
        AWS_ENDPOINT_URL=moto,
        WEBHOOK_API_KEYS=API_KEY,
        CLEANUP_GRACE_PERIOD="0s",
        # moto has no App Runner: it answers 404 and every check would fail closed.
        CLEANUP_SKIP_SOURCES="apprunner_services",
        Q_WORKERS="2",
        **broker,
    )


ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.fixture
def shared_broker(request) -> Iterator[dict[str, str]]:
    """Redis on PostgreSQL, as two hosts would share them. On SQLite (one machine by nature) the
    ORM broker: two clusters then also share its queue table, claimed by conditional updates."""
    server = request.getfixturevalue("redis") if ON_POSTGRESQL else None
    with broker_env("redis" if ON_POSTGRESQL else "orm", server) as env:
        yield env


def test_two_clusters_share_a_burst_and_do_each_piece_of_work_once(
    tmp_path: Path, shared_broker, slow_probes
):
    with moto_in_this_process() as moto, own_database(tmp_path, "scale_out") as database_url:
        world = World(moto)
        world.build_registry()
        world.build_breakers()
        console = console_for(tmp_path, database_url, moto, shared_broker)
        console.manage("migrate", "--no-input")
        ids = console.run(
            SET_UP.format(world=world.as_json(), account=ACCOUNT, region=REGION, password=PASSWORD)
        )
        assert ids["states"] == [["half_open", "Disabled"]], ids
        world.queue_messages(5)
        events = burst_of_events(world)
        try:
            web = console.start_web()
            start_clusters(console, ["worker-a", "worker-b"])

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                clicks = pool.submit(
                    operator_clicks, web, ids["to_approve"], list(ids["breakers"].values())
                )
                answers = Counter(pool.map(lambda event: post_event(web, event), events))
                assert answers == {202: 500}, answers
                assert set(clicks.result()) == {302}, clicks.result()
            burst_seconds = time.monotonic() - started

            def settled() -> bool:
                [(pending,)] = console.sql(
                    "SELECT count(*) FROM webhooks_inboundevent"
                    " WHERE status IN ('received', 'processing')"
                )
                [(open_work,)] = console.sql(
                    "SELECT count(*) FROM cleanup_deletioncheck"
                    " WHERE status IN ('scheduled', 'running', 'approved', 'failed')"
                )
                [(recovering,)] = console.sql(
                    "SELECT count(*) FROM breaker_breaker WHERE state != 'closed'"
                )
                return pending + open_work + recovering == 0

            # The first scheduler pass comes about 30 s after the clusters start; the checks the
            # events open are decided by it, or by the next `cleanup.run-due` a minute later.
            wait_for("every piece of work done", settled, timeout=180, every=1, log=console.logs)
            settled_seconds = time.monotonic() - started
            outcome = console.run(OUTCOME)
            shares = {name: tasks_started(console, name) for name in ["worker-a", "worker-b"]}
        finally:
            console.stop_all()

        # Every event handled once: one attempt, one outcome in its history, nothing held.
        assert len(outcome["events"]) == 500
        for event in outcome["events"]:
            assert event["attempts"] == 1, event
            assert event["done"] in (["processed"], ["ignored"]), event
            assert not event["claimed"] and not event["claim"], event
        statuses = Counter(event["status"] for event in outcome["events"])
        assert statuses == {"processed": len(world.named), "ignored": 500 - len(world.named)}
        # ... and each handler ran once: every run of a named image's handler opens or
        # reschedules its check, with an audit event (the row alone would not tell: a second
        # run writes the same status and history over the first).
        assert len(outcome["opened"]) == len(world.named), Counter(outcome["opened"])
        assert len({target for _, target in outcome["opened"]}) == len(world.named)

        # Every check decided once, by one worker; those used by a service are kept.
        checks = {check["digest"]: check for check in outcome["checks"]}
        assert set(checks) == {*world.due, *world.to_approve, *world.named_digests}
        for check in checks.values():
            assert len(check["decisions"]) == 1, check
            assert not check["claim"], check
        expected = {digest: "awaiting_approval" for digest in [*world.due, *world.named_digests]}
        expected |= {digest: "in_use" for digest in world.in_use}
        expected |= {digest: "deleted" for digest in world.to_approve}
        assert {digest: check["status"] for digest, check in checks.items()} == expected

        # Every approved image deleted once: gone from ECR, one `image.deleted` each; every
        # other image still there.
        assert Counter(outcome["deleted"]) == Counter(world.to_approve)
        left = world.digests()
        assert not left & set(world.to_approve)
        assert {*world.due, *world.named_digests} <= left

        # At most one probe per breaker at a time, and the breakers closed by their probes.
        for name in BREAKERS:
            probes = [probe for probe in outcome["probes"] if probe["breaker"] == name]
            assert len(probes) >= 3, probes
            for earlier, later in pairwise(probes):
                assert earlier["at"] + earlier["ms"] / 1000 <= later["at"], (earlier, later)
            assert outcome["breakers"][name] == {
                "state": "closed",
                "mapping": "Enabled",
                "lease": False,
            }
        assert not outcome["drain"]

        # Both clusters worked.
        assert all(count > 10 for count in shares.values()), shares
        print(
            f"\nburst posted in {burst_seconds:.1f} s; everything done {settled_seconds:.1f} s "
            f"after it started; tasks started per cluster: {shares}"
        )


KILLED_SET_UP = f"""
from accounts import actions as accounts
accounts.do_add_account(
    actor="set-up", account_id="{ACCOUNT}", name="shared", environment="shared", role_arn="",
    regions=["{REGION}"], usage_regions=["{REGION}"], is_registry=True,
)
print(1)
"""
PENDING = "SELECT id FROM webhooks_inboundevent WHERE status IN ('received', 'processing')"


def slow_deregistration(name: str) -> dict:
    """CloudTrail's event without the response: the handler describes the revision in ECS, and
    ECS (moto, slowed down) takes 0.1 s to answer."""
    event = deregistration_event(name, account=ACCOUNT)
    del event["detail"]["responseElements"]
    return event


def drain_under_way(log: Path) -> bool:
    """The cluster has started a drain and handled its first event: it holds the rest of a
    claimed batch (the drain logs each event it handles)."""
    lines = [line for line in log.read_text().splitlines() if "drain" in line]
    started = sum("webhooks.tasks.drain started" in line for line in lines)
    finished = sum("webhooks.tasks.drain finished" in line for line in lines)
    return started > finished and "by the drain" in lines[-1]


def claims_logged(log: Path) -> set[str]:
    """The claim tokens of the batches a cluster's drains took (``drain <token> claimed``)."""
    return set(re.findall(r"drain ([0-9a-f]{32}) claimed", log.read_text()))


@pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="PostgreSQL only (CI): on SQLite's one writer, four workers whose handlers hold the "
    "write lock during their AWS call starve each other ('database is locked', retried), which "
    "is not what this test is about",
)
def test_a_killed_worker_s_events_resume_on_the_other_within_a_minute_and_each_is_done_once(
    tmp_path: Path, redis
):
    """Events are claimed on their rows for PROCESSING_LEASE (30 s). A worker host killed with
    SIGKILL (its qcluster and every process of it, as when a host dies) leaves its claimed
    events `processing`; once the lease ends, the other host's next drain takes them, asked for
    by that host's watch (``do_resume_stalled``, every 10 s) if no drain is running. Each is
    done once: the killed drain's uncommitted work died with its connection."""

    with (
        # each handler run describes its event's revision once, slowly
        moto_patches.slow_task_definition_reads(0.1) as described,
        moto_in_this_process() as moto,
        own_database(tmp_path, "killed") as database_url,
        broker_env("redis", redis) as broker,
    ):
        console = console_for(tmp_path, database_url, moto, broker)
        console.manage("migrate", "--no-input")
        console.run(KILLED_SET_UP)
        try:
            # Accepted while no worker ran (a deploy, say): a backlog both hosts share.
            web = console.start_web()
            with ThreadPoolExecutor(max_workers=8) as pool:
                backlog = [slow_deregistration(f"app-{number}:1") for number in range(400)]
                answers = Counter(pool.map(lambda event: post_event(web, event), backlog))
            assert answers == {202: 400}, answers
            start_clusters(console, ["worker-a", "worker-b"])

            wait_for(
                "a drain under way in worker-b",
                lambda: drain_under_way(console.dir / "worker-b.log"),
                timeout=60,
                every=0.02,
            )
            os.killpg(console.processes["worker-b"].pid, signal.SIGKILL)
            killed = time.monotonic()
            console.processes["worker-b"].wait(timeout=10)
            quoted = ", ".join(
                f"'{claim}'" for claim in claims_logged(console.dir / "worker-b.log")
            )
            stuck = [
                pk
                for (pk,) in console.sql(
                    "SELECT id FROM webhooks_inboundevent"
                    f" WHERE status = 'processing' AND claim IN ({quoted})"
                )
            ]
            assert stuck, "the killed worker held no event: the test proves nothing"
            ids = ", ".join(str(pk) for pk in stuck)

            def resumed() -> float:
                left = console.sql(f"{PENDING} AND id IN ({ids})")
                return not left and time.monotonic() - killed

            recovered = wait_for(
                "the killed worker's events done", resumed, timeout=90, every=0.5, log=console.logs
            )
            wait_for("every event done", lambda: not console.sql(PENDING), timeout=100)
            rows = console.sql("SELECT id, attempts, status, history FROM webhooks_inboundevent")
            assert console.processes["worker-a"].poll() is None, console.logs("worker-a")
        finally:
            console.stop_all()
        print(
            f"\n{len(stuck)} events held by the killed worker, all done by the other "
            f"{recovered:.1f} s after the kill"
        )
        by_id = {pk: (attempts, status, history) for pk, attempts, status, history in rows}
        # Each event done once: one attempt, one outcome in its history.
        assert len(by_id) == 400
        assert {(attempts, status) for attempts, status, _ in by_id.values()} == {(1, "ignored")}
        for pk, (_, _, history) in by_id.items():
            history = json.loads(history) if isinstance(history, str) else history
            assert [entry["what"] for entry in history] == ["received", "ignored"], (pk, history)
        # Every event's handler ran, and ran again only where the killed drains' open
        # transactions died (each commits at least every COMMIT_SECONDS: two 0.1 s events and
        # the one under way, in each of the killed host's two worker processes).
        assert len(described) == 400, len(described)
        assert sum(count - 1 for count in described.values()) <= 6, described.most_common(8)
        # The lease (30 s) and then the next drain: within a minute of the kill.
        assert recovered < 60, f"the survivor took {recovered:.0f} s to take the work over"
