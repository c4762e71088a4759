import csv
import json
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from console import clock, keyset
from console.http import HtmxRequest, htmx_partial

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


ACTIONS_CACHE_KEY = "audit:actions"
ACTIONS_CACHE_SECONDS = 600


def known_actions() -> list[str]:
    """The action names to filter on. Read from the table at most every ten minutes (a
    ``SELECT DISTINCT`` over every event is too slow to run at each page load); an action newer
    than that can still be typed, the filter matches by prefix."""
    actions = cache.get(ACTIONS_CACHE_KEY)
    if actions is None:
        actions = list(
            AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        )
        cache.set(ACTIONS_CACHE_KEY, actions, ACTIONS_CACHE_SECONDS)
    return list(actions)


# Where a target lives: (target_type, the permission to open it, its address from the id).
TARGET_PAGES: dict[str, tuple[str, Callable[[str], str]]] = {
    "breaker": ("breaker.view_breaker", lambda pk: reverse("breaker:detail", args=[int(pk)])),
    "deletion_check": ("cleanup.view_deletioncheck", lambda pk: reverse("cleanup:check", args=[int(pk)])),
    "inbound_event": ("webhooks.view_inboundevent", lambda pk: reverse("webhooks:event", args=[int(pk)])),
    "aws_account": ("accounts.view_awsaccount", lambda account: f"{reverse('accounts:list')}#account-{account}"),
    "user": ("auth.view_user", lambda _: reverse("users:list")),
    "group": ("auth.view_user", lambda _: reverse("users:list")),
}  # fmt: skip


def link_targets(events: list[AuditEvent], user: Any) -> None:
    """Set ``event.target_url`` to the page of the event's target, where the user may open it
    (no link to a page that would answer 403). Repositories are found by ARN, images by their
    repository, in one query each."""
    by_type: dict[str, set[str]] = {}
    for event in events:
        by_type.setdefault(event.target_type, set()).add(event.target_id)
    repositories: dict[str, int] = {}
    images: dict[tuple[str, str], int] = {}
    if user.has_perm("cleanup.view_repository"):
        from cleanup.models import Repository

        if by_type.get("ecr_repository"):
            repositories = dict(
                Repository.objects.filter(arn__in=by_type["ecr_repository"]).values_list(
                    "arn", "pk"
                )
            )
        # An image's label starts with its repository's name ("team/web:v1@1a2b3c"): its page
        # is the repository's, found by account and name (no index on digests alone).
        image_names = {
            (event.account_id, event.target_label.split(":", 1)[0])
            for event in events
            if event.target_type == "ecr_image"
        }
        if image_names:
            found = Repository.objects.filter(
                account__account_id__in={account for account, _ in image_names},
                name__in={name for _, name in image_names},
            ).values_list("account__account_id", "name", "pk")
            images = {(account, name): pk for account, name, pk in found}
    for event in events:
        url = ""
        if event.target_type == "ecr_repository" and event.target_id in repositories:
            url = reverse("cleanup:repository", args=[repositories[event.target_id]])
        elif (
            event.target_type == "ecr_image"
            and (key := (event.account_id, event.target_label.split(":", 1)[0])) in images
        ):
            url = reverse("cleanup:repository", args=[images[key]])
        elif event.target_type in TARGET_PAGES and event.target_id:
            permission, address = TARGET_PAGES[event.target_type]
            if user.has_perm(permission):
                try:
                    url = address(event.target_id)
                except (ValueError, NoReverseMatch):
                    url = ""
        event.target_url = url  # type: ignore[attr-defined]


@require_GET
@permission_required("audit.view_auditevent", raise_exception=True)
def event_list(request: HtmxRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = keyset.page_of(form.events(), request.GET, field="at")
    link_targets(page.rows, request.user)
    query = request.GET.copy()
    for name in ("older", "newer", "page"):
        query.pop(name, None)
    context = {
        "form": form,
        "problems": form.problems(),
        "page": page,
        "query": query.urlencode(),
        "actions": known_actions(),
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
        columns = ("at", "actor", "action", "target_type", "target_id", "target_label")
        for at, *text, account_id, details in _in_chunks(
            events.values_list(*columns, "account_id", "details", "id")
        ):
            yield writer.writerow(
                [
                    at.isoformat(),
                    *map(
                        spreadsheet_safe, [*text, account_id, json.dumps(details, sort_keys=True)]
                    ),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    filename = f"audit-{clock.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _in_chunks(rows: QuerySet[AuditEvent, tuple[Any, ...]], size: int = 1000) -> Iterator[Any]:
    """``rows`` (newest first, ``at`` first and ``id`` last in each tuple) one keyset page at a
    time: each page is a short indexed query, so the first rows leave at once and no cursor or
    transaction stays open while the client reads (a held cursor materialises every row first)."""
    rows = rows.order_by("-at", "-id")
    page = list(rows[:size])
    while page:
        yield from (row[:-1] for row in page)
        if len(page) < size:
            return
        at, last_id = page[-1][0], page[-1][-1]
        page = list(rows.filter(Q(at__lt=at) | Q(at=at, id__lt=last_id))[:size])
