"""Structured logs: one JSON object per line when ``LOG_FORMAT=json``.

Every line carries what is bound in the current context: the request id (from the
``X-Request-Id`` header or made here), the actor, and the domain ids of what the code is working
on (``check_id``, ``breaker_id``, ``event_id``...). Code binds ids with ``bound(check_id=...)``.

The request id follows work into the worker: django-q's ``pre_enqueue`` signal stores the id of the
request that enqueued a task in the task package (a key of its own, not the task's arguments), and
``pre_execute`` binds it again in the worker, with the ids found among the task's arguments. So the
webhook request and the processing it triggers share one id.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# Accept a caller's id only when it looks like one (no spaces, no control characters, bounded).
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
# The key under which an enqueued task carries the request id (django-q keeps unknown keys).
TASK_REQUEST_ID = "console_request_id"
# Task arguments with these names are domain ids, bound while the task runs.
DOMAIN_ID_ARGUMENTS = (
    "event_id",
    "check_id",
    "check_ids",
    "breaker_id",
    "probe_id",
    "repository_id",
    "image_id",
)
# Audit target types whose id is a domain id worth a field of its own.
AUDIT_TARGET_IDS = {
    "inbound_event": "event_id",
    "event": "event_id",
    "check": "check_id",
    "deletion_check": "check_id",
    "breaker": "breaker_id",
    "repository": "repository_id",
    "image": "image_id",
}

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("console_log_context", default=None)
ContextToken = Token[Mapping[str, Any] | None]
_task_tokens: dict[str, ContextToken] = {}

request_logger = logging.getLogger("console.request")
task_logger = logging.getLogger("console.task")
audit_logger = logging.getLogger("console.audit")


# --- Context -------------------------------------------------------------------------------------


def current() -> dict[str, Any]:
    """What is bound now (a copy)."""
    return dict(_context.get() or {})


def bind(**values: Any) -> ContextToken:
    """Add ``values`` (``None`` skipped) to the context; ``unbind(token)`` restores the previous."""
    merged = {**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    return _context.set(merged)


def unbind(token: ContextToken) -> None:
    _context.reset(token)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """``with bound(check_id=12): ...``: every log line inside carries ``check_id``."""
    token = bind(**values)
    try:
        yield
    finally:
        unbind(token)


def request_id() -> str | None:
    return (_context.get() or {}).get("request_id")


def new_request_id() -> str:
    return uuid.uuid4().hex


# --- Logging configuration ----------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copy the bound context onto every record (fields the record already has win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class ConsoleJsonFormatter(JsonFormatter):
    """``{"timestamp": ..., "level": ..., "logger": ..., "message": ..., <context>, <extra>}``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(["levelname", "name", "message"], **kwargs)


# --- Web requests -------------------------------------------------------------------------------


class RequestContextMiddleware:
    """Bind a request id for the whole request (and the actor once authentication ran), answer
    with it in ``X-Request-Id``, and log one line per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _REQUEST_ID_PATTERN.match(given) else new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]  # an attribute HttpRequest does not declare
        token = bind(request_id=rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = rid
            request_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            unbind(token)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        # Runs after every middleware's process_request, so authentication has happened; the
        # token is dropped on purpose: __call__ restores the whole context when the request ends.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bind(actor=user.get_username())


# --- Worker tasks (django-q signals) ------------------------------------------------------------


def remember_request_id(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """pre_enqueue: the task carries the id of the request (or task) that enqueued it."""
    rid = request_id()
    if rid:
        task[TASK_REQUEST_ID] = rid


def domain_ids(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The task's arguments that are domain ids, by parameter name."""
    if not callable(func):
        return {}
    try:
        arguments = inspect.signature(func).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}
    return {name: arguments[name] for name in DOMAIN_ID_ARGUMENTS if name in arguments}


def bind_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """pre_execute (in the worker): bind the enqueuing request's id and the task's domain ids."""
    name = task["func"] if isinstance(task["func"], str) else getattr(func, "__qualname__", "")
    ids = domain_ids(func, tuple(task.get("args") or ()), dict(task.get("kwargs") or {}))
    _task_tokens[task["id"]] = bind(
        request_id=task.get(TASK_REQUEST_ID) or f"task-{task['id']}",
        task=name,
        task_id=task["id"],
        **ids,
    )
    task_logger.info("task %s started", name)


def unbind_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """post_execute_in_worker: log the outcome and restore the context of before the task."""
    token = _task_tokens.pop(task["id"], None)
    if token is None:
        return
    success = task.get("success")
    task_logger.info(
        "task %s %s",
        current().get("task", ""),
        "failed" if success is False else "finished",
        extra={"success": success is not False},
    )
    unbind(token)


# --- Audit events --------------------------------------------------------------------------------


def log_audit_event(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Every audit event is also a log line, with the domain id of its target."""
    if not created:
        return
    extra = {
        "audit_action": instance.action,
        "audit_actor": instance.actor,
        "target_type": instance.target_type,
        "target_id": instance.target_id,
    }
    if instance.account_id:
        extra["account_id"] = instance.account_id
    id_field = AUDIT_TARGET_IDS.get(instance.target_type)
    if id_field and instance.target_id:
        extra[id_field] = instance.target_id
    for field in ("event_id", "check_id", "breaker_id"):
        value = (instance.details or {}).get(field) if isinstance(instance.details, dict) else None
        if value is not None:
            extra.setdefault(field, value)
    audit_logger.info(
        "audit %s %s:%s by %s",
        instance.action,
        instance.target_type,
        instance.target_id,
        instance.actor,
        extra=extra,
    )


class ObservabilityConfig(AppConfig):
    """Connects the signal receivers above (and owns no models)."""

    name = "console.logs"
    label = "console_logs"
    verbose_name = "Logs and metrics"

    def ready(self) -> None:
        from django.db.models.signals import post_save
        from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

        pre_enqueue.connect(remember_request_id, dispatch_uid="console.logs.enqueue")
        pre_execute.connect(bind_task, dispatch_uid="console.logs.execute")
        post_execute_in_worker.connect(unbind_task, dispatch_uid="console.logs.executed")
        post_save.connect(
            log_audit_event, sender="audit.AuditEvent", dispatch_uid="console.logs.audit"
        )
