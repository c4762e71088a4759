"""Demo-only webhook sink for notifications: the seeded channel (``seed_notify``) posts to
``/sandbox/notify/sink/`` through Apprise's json://, as Slack or a team's own webhook would
receive it, and ``/sandbox/notify/`` shows what arrived. Kept in this process's memory (``make
demo`` runs one web process). 404 unless CONSOLE_SANDBOX is on."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

SINK_PATH = "/sandbox/notify/sink/"
KEPT = 200
_received: deque[dict[str, Any]] = deque(maxlen=KEPT)
_lock = threading.Lock()


@csrf_exempt
@login_not_required
@require_POST
def sink(request: HttpRequest) -> HttpResponse:
    if not settings.SANDBOX:
        raise Http404("sandbox only")
    try:
        payload = json.loads(request.body[:65536] or b"{}")
    except ValueError:
        return JsonResponse({"error": "expected JSON"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "expected a JSON object"}, status=400)
    with _lock:
        _received.appendleft({"at": timezone.now(), **payload})
    return JsonResponse({"ok": True})


@require_GET
@permission_required("notify.view_channel", raise_exception=True)
def received(request: HttpRequest) -> HttpResponse:
    if not settings.SANDBOX:
        raise Http404("sandbox only")
    with _lock:
        messages = list(_received)
    return render(request, "notify/sandbox_sink.html", {"received": messages})


urlpatterns = [
    path("notify/sink/", sink, name="notify-sink"),
    path("notify/", received, name="notify-received"),
]
