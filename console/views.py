import logging

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console import clock, health
from console import dashboard as dashboard_tiles

logger = logging.getLogger(__name__)


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        # Anyone may ask: the answer names no host, port or driver message (they are logged).
        logger.exception("healthz: the database did not answer")
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@require_GET
@never_cache
@login_not_required
def healthz_worker(request: HttpRequest) -> JsonResponse:
    """Whether a worker beats and every schedule runs: status words only (no sign-in here)."""
    try:
        state = health.worker_health()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse(state.as_json(), status=200 if state.ok else 503)


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    worker = health.worker_health(now)
    context = {
        "tiles": dashboard_tiles.tiles_for(request),
        "worker": worker,
        "attention": dashboard_tiles.needs_attention(request, worker, now),
        "pictures": dashboard_tiles.pictures_for(request, now),
    }
    return render(request, "console/dashboard.html", context)
