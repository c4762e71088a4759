"""``/metrics`` in Prometheus' text format (prometheus_client).

Two kinds of figures:

- request metrics, counted in this process by ``RequestMetricsMiddleware``;
- domain figures, read from the database at scrape time by ``DomainCollector`` (checks by status,
  bytes reclaimed, breakers by state, probes by outcome, inbox events by status, audit events by
  action, the worker's queue length, the age of its heartbeat, and each schedule's last run and
  health, see ``console.health``). They are the same on every web process, so any replica can be
  scraped. Models are looked up by name, so the figures of an app that is not
  installed are simply absent.

The endpoint needs ``Authorization: Bearer <METRICS_TOKEN>``; without ``METRICS_TOKEN`` it does not
exist (404), with a wrong or missing token it answers 401.

With several gunicorn workers, request metrics are per process unless ``PROMETHEUS_MULTIPROC_DIR``
names an empty directory shared by the workers (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from console import clock, health

logger = logging.getLogger(__name__)

PREFIX = "console"
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# Request metrics, registered in no global registry (the scrape registry below holds them).
REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by method, view and status code.",
    ["method", "view", "status"],
    registry=None,
)
REQUEST_SECONDS = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer HTTP requests, by method and view.",
    ["method", "view"],
    registry=None,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _model(label: str) -> Any:
    """The model ``app_label.ModelName`` or ``None`` when its app is not installed (``Any``: looked
    up by label, so its manager's own methods are unknown here)."""
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _counts(label: str, field: str) -> dict[str, int] | None:
    model = _model(label)
    if model is None:
        return None
    rows = model.objects.order_by().values(field).annotate(n=Count("pk"))
    counts = {value: 0 for value, _ in model._meta.get_field(field).choices or ()}
    counts.update({row[field]: row["n"] for row in rows})
    return counts


def _gauge(name: str, doc: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


class DomainCollector(Collector):
    """Reads the database at scrape time; never raises (a failed figure is logged and left out)."""

    def describe(self) -> Iterable[Metric]:
        return []  # no query when the collector is registered

    def collect(self) -> Iterator[Metric]:
        for part in (
            self._checks,
            self._breakers,
            self._probes,
            self._inbox,
            self._audit,
            self._queue,
            self._heartbeat,
            self._worker_health,
        ):
            try:
                yield from part()
            except Exception:
                logger.exception("metrics: %s failed", part.__name__)

    def _checks(self) -> Iterator[Metric]:
        counts = _counts("cleanup.DeletionCheck", "status")
        if counts is None:
            return
        yield _gauge("cleanup_checks", "Deletion checks by status.", "status", counts)
        total = _model("cleanup.Repository").objects.bytes_reclaimed()
        reclaimed = CounterMetricFamily(
            f"{PREFIX}_cleanup_reclaimed_bytes", "Bytes of images deleted by the console."
        )
        reclaimed.add_metric([], total)
        yield reclaimed

    def _breakers(self) -> Iterator[Metric]:
        counts = _counts("breaker.Breaker", "state")
        if counts is not None:
            yield _gauge("breakers", "Circuit breakers by state.", "state", counts)

    def _probes(self) -> Iterator[Metric]:
        counts = _counts("breaker.Probe", "outcome")
        if counts is None:
            return
        family = CounterMetricFamily(
            f"{PREFIX}_breaker_probes", "Breaker probes by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(counts.items()):
            family.add_metric([outcome], count)
        yield family

    def _inbox(self) -> Iterator[Metric]:
        counts = _counts("webhooks.InboundEvent", "status")
        if counts is not None:
            yield _gauge("inbox_events", "Inbound webhook events by status.", "status", counts)

    def _audit(self) -> Iterator[Metric]:
        model = _model("audit.AuditEvent")
        if model is None:
            return
        family = CounterMetricFamily(
            f"{PREFIX}_audit_events",
            "Audit events by action (the history is append-only, so these only grow).",
            labels=["action"],
        )
        rows = model.objects.order_by().values("action").annotate(n=Count("pk"))
        for row in sorted(rows, key=lambda r: r["action"]):
            family.add_metric([row["action"]], row["n"])
        yield family

    def _queue(self) -> Iterator[Metric]:
        from django_q.brokers import get_broker

        family = GaugeMetricFamily(
            f"{PREFIX}_worker_queue_length", "Tasks waiting in the worker queue."
        )
        family.add_metric([], get_broker().queue_size() or 0)
        yield family

    def _heartbeat(self) -> Iterator[Metric]:
        from django_q.models import Task

        last = Task.objects.aggregate(last=Max("stopped"))["last"]
        family = GaugeMetricFamily(
            f"{PREFIX}_worker_last_task_finished_timestamp_seconds",
            "When a worker last finished a task (Unix time; 0 if never).",
        )
        family.add_metric([], last.timestamp() if last else 0)
        yield family

    def _worker_health(self) -> Iterator[Metric]:
        state = health.worker_health(clock.now())
        age = GaugeMetricFamily(
            f"{PREFIX}_worker_heartbeat_age_seconds",
            "Seconds since a worker last beat (+Inf if none ever did); above 120 it is silent.",
        )
        seconds = state.heartbeat_age
        age.add_metric([], math.inf if seconds is None else seconds.total_seconds())
        yield age
        last_run = GaugeMetricFamily(
            f"{PREFIX}_schedule_last_run_timestamp_seconds",
            "When a worker last started each recurring schedule's task (Unix time; 0 if never).",
            labels=["schedule"],
        )
        healthy = GaugeMetricFamily(
            f"{PREFIX}_schedule_ok",
            "1 when the schedule exists and is not overdue by more than two of its intervals.",
            labels=["schedule"],
        )
        for schedule in state.schedules:
            at = schedule.last_run_at
            last_run.add_metric([schedule.name], at.timestamp() if at else 0)
            healthy.add_metric([schedule.name], 1 if schedule.status == "ok" else 0)
        yield last_run
        yield healthy


def _build_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    if MULTIPROCESS_DIR:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    else:
        registry.register(REQUESTS)
        registry.register(REQUEST_SECONDS)
    registry.register(DomainCollector())
    return registry


REGISTRY = _build_registry()


def token_matches(header: str) -> bool:
    scheme, _, given = header.partition(" ")
    expected = settings.METRICS_TOKEN or ""
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


@require_GET
@never_cache
@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off: METRICS_TOKEN is not set")
    if not token_matches(request.headers.get("Authorization", "")):
        response = HttpResponse(
            "a bearer token is required\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Count and time every request, labelled by the view's name (bounded cardinality)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        REQUESTS.labels(method, view, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(method, view).observe(time.perf_counter() - started)
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
