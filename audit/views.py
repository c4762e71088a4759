import csv
import json
from collections.abc import Iterator

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from console import clock
from console.http import HtmxRequest, htmx_partial

PAGE_SIZE = 50
CSV_COLUMNS = [
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "account_id",
    "details",
]


@require_GET
@permission_required("audit.view_auditevent", raise_exception=True)
def event_list(request: HtmxRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = Paginator(form.events(), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "actions": AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct(),
    }
    template = "audit/list.html#results" if htmx_partial(request) else "audit/list.html"
    return render(request, template, context)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): text that
    starts like one gets a leading apostrophe, which spreadsheets show as plain text."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


@require_GET
@permission_required("audit.view_auditevent", raise_exception=True)
def export_csv(request: HtmxRequest) -> StreamingHttpResponse:
    events = AuditFilterForm(request.GET).events()

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def rows() -> Iterator[object]:
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    event.at.isoformat(),
                    *map(
                        spreadsheet_safe,
                        [
                            event.actor,
                            event.action,
                            event.target_type,
                            event.target_id,
                            event.target_label,
                            event.account_id,
                            json.dumps(event.details, sort_keys=True),
                        ],
                    ),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    filename = f"audit-{clock.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
