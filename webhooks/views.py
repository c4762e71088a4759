"""The two webhook doors (no login, no CSRF: they authenticate by key or signature), the inbox."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.db import DatabaseError
from django.db.models import Field
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from console import clock, keyset
from console.http import HtmxRequest, actor_of, htmx_partial
from webhooks import actions, classify, payload, registry, sns
from webhooks.models import InboundEvent, parse_sns_message

logger = logging.getLogger(__name__)
MAX_BODY = 256 * 1024
PAGE_SIZE = 50


def _max_length(field: Field[Any, Any]) -> int:
    if field.max_length is None:
        raise TypeError(f"{field} has no max_length")
    return field.max_length


DETAIL_TYPE_LENGTH = _max_length(InboundEvent._meta.get_field("detail_type"))
DEDUPE_KEY_LENGTH = _max_length(InboundEvent._meta.get_field("dedupe_key"))
TOPIC_ARN_LENGTH = _max_length(InboundEvent._meta.get_field("topic_arn"))


def error(status: int, text: str) -> JsonResponse:
    return JsonResponse({"error": text}, status=status)


def method_not_allowed() -> JsonResponse:
    response = error(405, "only POST is allowed")
    response["Allow"] = "POST"
    return response


def read_body(request: HttpRequest) -> bytes | JsonResponse:
    """The body, or a 413 answer when it is larger than MAX_BODY (declared or actual). A body
    without Content-Length (chunked) is refused with 411: Django would read it as empty."""
    if not request.META.get("CONTENT_LENGTH") and request.headers.get("Transfer-Encoding"):
        return error(411, "send the body with a Content-Length header (chunked bodies are refused)")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "Content-Length is not a number")
    if declared > MAX_BODY:
        return error(413, f"body is {declared} bytes; the limit is {MAX_BODY}")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return error(413, f"body is larger than the limit of {MAX_BODY} bytes")
    return body


def decode_json(body: bytes) -> tuple[str, Any] | JsonResponse:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return error(400, "body is not UTF-8 text")
    if "\x00" in text:
        return error(400, "body contains a NUL character")
    if payload.too_deep(text):
        return error(400, f"body nests deeper than {payload.MAX_DEPTH} levels")
    try:
        value = json.loads(text)
    except ValueError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    problem = payload.unstorable_string(value)
    if problem:
        return error(400, problem)
    return text, value


def accepted(event: InboundEvent | JsonResponse | None) -> JsonResponse:
    if isinstance(event, JsonResponse):
        return event
    if event is None:
        return JsonResponse({"status": "duplicate"}, status=200)
    return JsonResponse({"status": "accepted", "id": event.pk}, status=202)


def api_key_matches(given: str) -> bool:
    """Compare against every configured key in constant time (no early exit on a match)."""
    given_bytes = given.encode()
    matches = [hmac.compare_digest(given_bytes, key.encode()) for key in settings.WEBHOOK_API_KEYS]
    return any(matches)


@csrf_exempt
@login_not_required
def eventbridge(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed()
    if not settings.WEBHOOK_API_KEYS:
        return error(401, "no API key is configured (WEBHOOK_API_KEYS); every request is refused")
    given = request.headers.get("X-Api-Key")
    if not given:
        return error(401, "missing X-Api-Key header")
    if not api_key_matches(given):
        return error(401, "wrong X-Api-Key")
    body = read_body(request)
    if isinstance(body, JsonResponse):
        return body
    decoded = decode_json(body)
    if isinstance(decoded, JsonResponse):
        return decoded
    text, event = decoded
    problem = eventbridge_problem(event)
    if problem:
        return error(400, problem)
    stored = store(
        source=InboundEvent.Source.EVENTBRIDGE,
        dedupe_key=event["id"],
        raw_body=text,
        classification=classify.classify_eventbridge(event),
    )
    return accepted(stored)


def store(**fields: Any) -> InboundEvent | JsonResponse | None:
    """Store the event; a database that cannot take it now is the one 5xx a door answers (a JSON
    503, so EventBridge and SNS deliver again later)."""
    try:
        return actions.do_receive_event(**fields)
    except DatabaseError:
        logger.exception("could not store a %s event", fields["source"])
        return error(503, "the console cannot store events right now; deliver again later")


def eventbridge_problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f"body must be a JSON object (one EventBridge event), not a {type(event).__name__}"
    missing = [name for name in ("id", "source", "detail-type", "detail") if name not in event]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if not isinstance(event["id"], str) or not event["id"].strip() or len(event["id"]) > 255:
        return "id must be a non-empty string of at most 255 characters"
    if not isinstance(event["source"], str) or not isinstance(event["detail-type"], str):
        return "source and detail-type must be strings"
    if len(event["detail-type"]) > DETAIL_TYPE_LENGTH:
        return f"detail-type must be at most {DETAIL_TYPE_LENGTH} characters"
    if not isinstance(event["detail"], dict):
        return "detail must be a JSON object"
    return None


@csrf_exempt
@login_not_required
def sns_endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed()
    body = read_body(request)
    if isinstance(body, JsonResponse):
        return body
    decoded = decode_json(body)
    if isinstance(decoded, JsonResponse):
        return decoded
    text, _ = decoded
    try:
        message = sns.parse(text, request.headers.get("x-amz-sns-message-type"))
    except sns.MalformedMessage as exc:
        return error(400, str(exc))
    for name, limit in (("MessageId", DEDUPE_KEY_LENGTH), ("TopicArn", TOPIC_ARN_LENGTH)):
        if len(message[name]) > limit:
            return error(400, f"{name} must be at most {limit} characters")
    now = clock.now()
    try:
        sns.verify(message, allowed_topics=settings.SNS_TOPIC_ARNS, now=now)
    except sns.VerificationFailed as exc:
        return error(403, str(exc))
    except sns.CertificateUnavailable as exc:
        return error(503, str(exc))
    inner = parse_sns_message(message["Message"]) if message["Type"] == "Notification" else None
    # A subscription confirmation is confirmed by the worker like any other event: SNS does not
    # wait for it (the SubscribeURL stays valid for three days), and no request waits on AWS.
    stored = store(
        source=InboundEvent.Source.SNS,
        dedupe_key=message["MessageId"],
        raw_body=text,
        classification=classify.classify_sns(message, inner),
        message_type=message["Type"],
        topic_arn=message["TopicArn"],
        now=now,
    )
    return accepted(stored)


WAITING = {InboundEvent.Status.RECEIVED, InboundEvent.Status.PROCESSING}


# --- The inbox ----------------------------------------------------------------------------------

FILTERS = {
    "source": InboundEvent.Source.choices,
    "kind": registry.KINDS,
    "status": InboundEvent.Status.choices,
}


@require_GET
@permission_required("webhooks.view_inboundevent", raise_exception=True)
def inbox(request: HtmxRequest) -> HttpResponse:
    chosen = {
        name: request.GET.get(name, "")
        for name, choices in FILTERS.items()
        if request.GET.get(name, "") in {value for value, _ in choices}
    }
    events = InboundEvent.objects.filter(**{name: value for name, value in chosen.items() if value})
    events = events.defer("raw_body", "history")
    page = keyset.page_of(events, request.GET, field="received_at", size=PAGE_SIZE)
    context = {
        "page": page,
        "chosen": chosen,
        "filters": FILTERS,
    }
    template = "webhooks/inbox.html#results" if htmx_partial(request) else "webhooks/inbox.html"
    return render(request, template, context)


@require_GET
@permission_required("webhooks.view_inboundevent", raise_exception=True)
def event_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    """The event; while the worker still owes it processing, the outcome panel asks again every
    few seconds (htmx, target ``event-outcome``) and is told to stop (286) once it is final."""
    event = get_object_or_404(InboundEvent, pk=pk)
    if htmx_partial(request, "event-outcome"):
        response = render(request, "webhooks/event.html#outcome", {"event": event})
        if event.status not in WAITING:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "webhooks/event.html", {"event": event})


@require_POST
@permission_required("webhooks.reprocess_inboundevent", raise_exception=True)
def reprocess(request: HtmxRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(InboundEvent, pk=pk)
    if actions.do_reprocess_event(event, actor=actor_of(request)):
        messages.success(request, "Event queued for processing again.")
    else:
        messages.error(
            request, f"Only failed events can be re-processed; this one is {event.status}."
        )
    event.refresh_from_db()
    if htmx_partial(request):
        return render(request, "webhooks/event.html#outcome", {"event": event})
    return redirect("webhooks:event", pk=event.pk)
