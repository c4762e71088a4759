"""Pages every part of the console shares: the 404 page in debug mode too, the favicon."""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_GET


class NotFoundPageMiddleware:
    """With ``DEBUG=true`` (the demo) Django answers a 404 with its technical page, and
    ``handler404`` is never used. This turns every HTML 404 into the console's own page there
    too; JSON answers (the webhook doors) pass unchanged. With ``DEBUG`` off Django already
    renders ``404.html`` and this does nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return render(request, "404.html", status=404)
        return response


@require_GET
@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico`` for clients that ask for it before reading ``<link rel=icon>``."""
    return HttpResponsePermanentRedirect(static("console/favicon.svg"))
