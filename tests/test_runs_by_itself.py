"""The console runs by itself: real processes, and nothing but events and a person's approval.

Three processes share one database of their own (``tests.processes``): the web server
(gunicorn), ONE worker (``manage.py qcluster``) and, in this process, moto's server standing in
for AWS (``AWS_ENDPOINT_URL`` points both at it). After the set-up (AWS resources in moto with
boto3; the account, the breaker, the inventory and the operator with the console's actions, run
by ``manage.py shell``), the test only sends what AWS would send and does what an operator
does, then waits, with bounds, for what anyone could observe:

(a) an alarm's ALARM event disables the breaker's SQS mapping;
(b) its OK event alone leads to the breaker closed and the mapping enabled: the first probe runs
    at once, the next from the recurring ``breaker.tick`` schedule;
(c) a task definition's deregistration event alone leads to a check awaiting approval (grace
    period 0s), decided by the recurring ``cleanup.run-due`` schedule;
(d) the operator's approval through the web alone leads to the image's absence from ECR.

Nothing after the set-up calls a task or a command: every reading below is a SELECT, an HTTP
GET, or a read of moto. The schedules exist because ``migrate`` wrote them; the worker's first
scheduler pass comes about 30 s after it starts, so the whole takes about a minute.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests

from scenarios import clients
from scenarios.ecr import create_repository, image_digests, image_manifest, push_image
from scenarios.ecs import register_task_definition
from scenarios.lambdas import queue_function_mapping_alarm
from tests.breaker.events import eventbridge_alarm
from tests.conftest import PASSWORD
from tests.processes import Console, moto_in_this_process, own_database, sign_in, wait_for
from tests.webhooks.shapes import deregistration_event

ACCOUNT = clients.MOTO_ACCOUNT  # the console's own credentials act there
REGION = "eu-west-1"
API_KEY = "runs-by-itself-" + uuid.uuid4().hex
FUNCTION = "orders-worker"
REPOSITORY = "orders"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:1.4.2"

SET_UP = """
import json
from django.contrib.auth.models import Group, User
from accounts import actions as accounts
from breaker import actions as breakers
from cleanup import actions as cleanup

account = accounts.do_add_account(
    actor="set-up", account_id="{account}", name="shared", environment="shared", role_arn="",
    regions=["{region}"], usage_regions=["{region}"], is_registry=True,
)
breaker = breakers.do_add_breaker(
    actor="set-up", name="orders", account=account, region="{region}", function_name="{function}",
    alarms=["{function}-errors"], successes_to_close=2, probe_interval_seconds=1,
)
cleanup.do_sync_inventory()
operator = User.objects.create_user(username="oscar", password="{password}")
operator.groups.add(Group.objects.get(name="operator"))
print(json.dumps({{"breaker": breaker.pk, "mapping": breaker.mapping_uuid}}))
"""


@pytest.fixture
def moto_server():
    with moto_in_this_process() as url:
        yield url


class Aws:
    """What the test does in moto: what AWS itself (or an engineer in it) would do."""

    def __init__(self, endpoint: str) -> None:
        self.client = clients.at_endpoint(endpoint, REGION)

    def build(self) -> None:
        """A queue, a function on it through an enabled mapping, the alarm on its errors; an
        opted-in repository with one image that an ACTIVE task definition uses."""
        self.function = queue_function_mapping_alarm(self.client, FUNCTION)
        ecr = self.client("ecr")
        create_repository(ecr, REPOSITORY)
        self.digest = push_image(ecr, REPOSITORY, "1.4.2", manifest=image_manifest("1.4.2", 1234))
        self.task_definition = register_task_definition(
            self.client("ecs"), "orders", [IMAGE], container="app"
        )

    @property
    def mapping(self) -> str:
        return self.function.mapping_uuid

    def mapping_state(self) -> str:
        return self.client("lambda").get_event_source_mapping(UUID=self.mapping)["State"]

    def alarm_goes(self, state: str) -> dict:
        """The alarm changes state; returns the event EventBridge would deliver for it."""
        cloudwatch = self.client("cloudwatch")
        name = self.function.alarm_name
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="Threshold")
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        return eventbridge_alarm(alarm["AlarmArn"], state, alarm["StateUpdatedTimestamp"])

    def send_messages(self, count: int) -> None:
        for number in range(count):
            self.client("sqs").send_message(
                QueueUrl=self.function.queue_url, MessageBody=f"order-{number}"
            )

    def deregister_task_definition(self) -> dict:
        """Deregistered in ECS; returns CloudTrail's event for it as EventBridge delivers it."""
        self.client("ecs").deregister_task_definition(taskDefinition=self.task_definition)
        return deregistration_event("orders:1", account=ACCOUNT, image=IMAGE)

    def image_digests(self) -> set[str]:
        return image_digests(self.client("ecr"), REPOSITORY)


def post_event(web: str, event: dict) -> None:
    response = requests.post(
        f"{web}/webhooks/eventbridge/", json=event, headers={"X-Api-Key": API_KEY}, timeout=10
    )
    assert response.status_code == 202, response.text


def awaiting_check_ids(browser: requests.Session, web: str) -> list[int]:
    page = browser.get(f"{web}/deletions/?status=awaiting_approval", timeout=10).text
    return [int(pk) for pk in re.findall(r'name="check" value="(\d+)"', page)]


def test_events_the_worker_and_one_approval_are_enough(tmp_path: Path, moto_server: str):
    aws = Aws(moto_server)
    aws.build()
    with own_database(tmp_path, "runs_by_itself") as database_url:
        console = Console(
            tmp_path,
            database_url,
            AWS_ENDPOINT_URL=moto_server,
            WEBHOOK_API_KEYS=API_KEY,
            CLEANUP_GRACE_PERIOD="0s",
            # moto has no App Runner: it answers 404 and every check would fail closed.
            CLEANUP_SKIP_SOURCES="apprunner_services",
        )
        console.manage("migrate", "--no-input")
        ids = console.run(
            SET_UP.format(account=ACCOUNT, region=REGION, function=FUNCTION, password=PASSWORD)
        )
        assert ids["mapping"] == aws.mapping
        try:
            web = console.start_web()
            console.start_worker()
            wait_for(
                "/healthz/worker reports a beating worker",
                lambda: (
                    requests.get(f"{web}/healthz/worker", timeout=5).json()
                    == {"status": "ok", "worker": "ok", "schedules": "ok"}
                ),
                timeout=30,
                log=console.logs,
            )

            # (a) ALARM: the mapping is disabled.
            post_event(web, aws.alarm_goes("ALARM"))
            wait_for(
                "the mapping disabled",
                lambda: aws.mapping_state() == "Disabled",
                timeout=30,
                log=console.logs,
            )
            assert console.sql(
                "SELECT cause, actor FROM breaker_breakertransition WHERE to_state = 'open'"
            ) == [("alarm", "webhook:eventbridge")]

            # (b) OK, with messages waiting: probes pass, the breaker closes, the mapping runs.
            aws.send_messages(3)
            post_event(web, aws.alarm_goes("OK"))
            # (c) meanwhile, a task definition that used the image is deregistered.
            post_event(web, aws.deregister_task_definition())

            wait_for(
                "the mapping enabled again",
                lambda: aws.mapping_state() == "Enabled",
                timeout=90,
                log=console.logs,
            )
            assert console.sql(
                f"SELECT state FROM breaker_breaker WHERE id = {ids['breaker']}"
            ) == [("closed",)]
            assert console.sql("SELECT outcome FROM breaker_probe") == [("passed",), ("passed",)]

            operator = sign_in(web)
            [check_id] = wait_for(
                "a check awaiting approval in the deletion queue",
                lambda: awaiting_check_ids(operator, web),
                timeout=90,
                every=1,
                log=console.logs,
            )
            assert console.sql(
                f"SELECT status, trigger FROM cleanup_deletioncheck WHERE id = {check_id}"
            ) == [("awaiting_approval", "task_definition_inactive")]
            assert aws.digest in aws.image_digests()

            # (d) The operator approves it, as the page's form does.
            approval = operator.post(
                f"{web}/deletions/approve/",
                data={
                    "check": str(check_id),
                    "status": "awaiting_approval",
                    "csrfmiddlewaretoken": operator.cookies["csrftoken"],
                },
                allow_redirects=False,
                timeout=10,
            )
            assert approval.status_code == 302, approval.text
            wait_for(
                "the image gone from ECR",
                lambda: aws.digest not in aws.image_digests(),
                timeout=60,
                log=console.logs,
            )
            assert console.sql(
                f"SELECT status FROM cleanup_deletioncheck WHERE id = {check_id}"
            ) == [("deleted",)]
            runs = dict(console.sql("SELECT name, last_run_at FROM console_schedulerun"))
            assert runs["breaker.tick"] and runs["cleanup.run-due"], runs
        finally:
            console.stop_all()
