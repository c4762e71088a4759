"""JSON logs: one object per line, with the request id, actor and domain ids; the request id
follows work from a webhook request into the worker."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from multiprocessing import Value

import pytest
from django.test import Client
from django_q.brokers import get_broker
from django_q.queues import Queue
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from django_q.worker import worker

from accounts import aws as accounts_aws
from console import logs
from console.logs import ConsoleJsonFormatter, ContextFilter
from scenarios.ecr import create_repository, image_manifest, image_uri, push_image
from scenarios.ecs import register_task_definition
from tests.observability import tasks as sample_tasks

API_KEY = "log-test-key-0123456789abcdef"
REGISTRY, PROD, REGION = "111111111111", "222222222222", "eu-west-1"


class JsonLines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def where(self, **fields) -> list[dict]:
        return [line for line in self.all if all(line.get(k) == v for k, v in fields.items())]


@pytest.fixture
def json_logs():
    """The root logger writes JSON lines (LOG_FORMAT=json's formatter and filter) to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleJsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield JsonLines(stream)
    root.removeHandler(handler)
    root.setLevel(level)


def test_log_format_json_configures_the_json_formatter_with_the_context_filter():
    from django.conf import settings

    assert settings.LOGGING["formatters"]["json"]["()"] == "console.logs.ConsoleJsonFormatter"
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["context"]


def test_every_line_is_one_json_object_with_the_bound_ids(json_logs):
    with logs.bound(request_id="r-1", actor="ada"), logs.bound(check_id=12):
        logging.getLogger("cleanup").info("deciding\nover two lines")
    logging.getLogger("cleanup").info("outside")

    inside, outside = json_logs.all
    assert inside["message"] == "deciding\nover two lines"
    assert inside["level"] == "INFO" and inside["logger"] == "cleanup"
    assert (inside["request_id"], inside["actor"], inside["check_id"]) == ("r-1", "ada", 12)
    assert "timestamp" in inside
    assert "request_id" not in outside and "check_id" not in outside


def test_a_request_gets_an_id_answers_with_it_and_logs_it_with_the_actor(json_logs, viewer_client):
    response = viewer_client.get("/audit/")

    request_id = response["X-Request-Id"]
    assert len(request_id) == 32
    (line,) = json_logs.where(logger="console.request")
    assert line["request_id"] == request_id
    assert line["actor"] == "vera"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/audit/", 200)


def test_a_callers_request_id_is_kept_and_a_malformed_one_replaced(db, client, json_logs):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-1234.abc")["X-Request-Id"] == "lb-1234.abc"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-Id"]
    assert replaced != "bad id\nwith newline" and len(replaced) == 32


def test_a_task_enqueued_by_a_request_logs_with_that_request_id_in_a_fresh_worker(db, json_logs):
    """The way the cluster runs it: enqueued into the broker during the request, executed later
    by a worker whose context knows nothing of the request."""
    broker = get_broker()
    with logs.bound(request_id="req-from-the-web"):
        async_task("tests.observability.tasks.touch_event", 41, sync=False, broker=broker)
    (ack_id, pack), *_ = broker.dequeue()
    task = SignedPackage.loads(pack)
    task_queue, result_queue = Queue(), Queue()
    task_queue.put(task)
    task_queue.put("STOP")

    contextvars.Context().run(worker, task_queue, result_queue, Value("f", -1))
    broker.acknowledge(ack_id)

    (line,) = json_logs.where(message="touching event 41")
    assert line["request_id"] == "req-from-the-web"
    assert line["event_id"] == 41
    assert line["task"] == "tests.observability.tasks.touch_event"
    started = json_logs.where(message="task tests.observability.tasks.touch_event started")
    assert started[0]["request_id"] == "req-from-the-web"
    assert logs.current() == {}
    assert sample_tasks.touched == [41]


# --- The acceptance path: a webhook request and the check it schedules -------------------------


def _deregistration_event(task_definition: dict) -> dict:
    return {
        "version": "0",
        "id": "log-test-event-1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": PROD,
        "time": "2026-11-27T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventSource": "ecs.amazonaws.com",
            "eventName": "DeregisterTaskDefinition",
            "awsRegion": REGION,
            "recipientAccountId": PROD,
            "requestParameters": {"taskDefinition": task_definition["taskDefinitionArn"]},
            "responseElements": {
                "taskDefinition": json.loads(json.dumps(task_definition, default=str))
            },
        },
    }


@pytest.mark.django_db(transaction=True)
def test_a_webhook_request_and_the_check_it_schedules_share_the_request_id(
    aws, make_account, settings, json_logs
):
    from cleanup import actions as cleanup_actions
    from cleanup.models import DeletionCheck

    settings.WEBHOOK_API_KEYS = [API_KEY]
    registry = make_account(REGISTRY, "shared", is_registry=True, environment="shared")
    prod = make_account(PROD, "production")
    ecr = accounts_aws.client(registry, REGION, "ecr")
    create_repository(ecr, "web")
    push_image(ecr, "web", "v1", manifest=image_manifest("v1"))
    cleanup_actions.do_sync_inventory()
    ecs = accounts_aws.client(prod, REGION, "ecs")
    image = image_uri(REGISTRY, REGION, "web", ":v1")
    arn = register_task_definition(ecs, "web", [image])
    deregistered = ecs.deregister_task_definition(taskDefinition=arn)["taskDefinition"]

    response = Client().post(
        "/webhooks/eventbridge/",
        data=json.dumps(_deregistration_event(deregistered)),
        content_type="application/json",
        HTTP_X_API_KEY=API_KEY,
    )

    assert response.status_code == 202
    request_id = response["X-Request-Id"]
    check = DeletionCheck.objects.get()
    (scheduled,) = json_logs.where(audit_action="check.scheduled")
    assert scheduled["request_id"] == request_id
    assert scheduled["check_id"] == str(check.pk)
    (request_line,) = json_logs.where(logger="console.request", path="/webhooks/eventbridge/")
    assert request_line["request_id"] == request_id
    event_id = response.json()["id"]
    processing = json_logs.where(logger="console.task", event_id=event_id)
    assert processing and all(line["request_id"] == request_id for line in processing)
