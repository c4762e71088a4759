from __future__ import annotations

import re
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from accounts.models import AwsAccount
from cleanup import actions, evidence, queue
from cleanup.actions.approvals import do_start_bulk_approval
from cleanup.aws import CleanupAwsError
from cleanup.forms import QUEUE_TABS, PolicyForm, QueueFilterForm, RegistrySettingsForm
from cleanup.models import BulkApproval, DeletionCheck, Image, RegistrySettings, Repository
from console import clock
from console.http import HtmxRequest, actor_of, htmx_partial, redirect_back, row_ids
from console.templatetags.console import counted

IMAGES_PAGE = 100
REPOSITORIES_PAGE = 100
JOB_SHOWN = timedelta(hours=1)  # how long the queue shows a finished bulk approval
WATCH_LIMIT = 200
QUEUE_CHANGED = "queue-changed"  # the event that refreshes the queue's tabs and totals
# Statuses a check page watches until the worker is done with them.
CHECK_WAITING = ("scheduled", "running", "approved")


def _repositories() -> QuerySet[Repository]:
    return Repository.objects.select_related("account")


def _with_open_checks(repositories: list[Repository]) -> list[Repository]:
    """Each repository's present images, bytes awaiting deletion and open checks: two grouped
    queries (a COUNT joined into the repositories' query costs three times more)."""
    ids = [repository.pk for repository in repositories]
    figures = queue.open_checks_by_repository(ids)
    images = dict(
        Image.objects.present()
        .filter(repository_id__in=ids)
        .order_by()
        .values_list("repository_id")
        .annotate(n=Count("id"))
        .values_list("repository_id", "n")
    )
    for repository in repositories:
        found = figures.get(repository.pk, {})
        repository.reclaimable = found.get("reclaimable", 0)
        # Not columns: the open checks an opt-out would cancel, and the images in ECR.
        repository.cancellable = found.get("cancellable", 0)  # type: ignore[attr-defined]
        repository.image_count = images.get(repository.pk, 0)  # type: ignore[attr-defined]
    return repositories


def _base() -> str:
    """``/repositories/``: the rows of the list build their addresses on it (see urls.py)."""
    return reverse("cleanup:repositories")


def _message_response(
    request: HtmxRequest, text: str, level: str = "success", *, extra: str = ""
) -> HttpResponse:
    """An htmx answer that shows ``text`` on the page the action came from (out of band, in the
    messages region), with ``extra`` fragments beside it."""
    message = render_to_string(
        "cleanup/message.html", {"text": text, "level": level}, request=request
    )
    return HttpResponse(extra + message)


@require_GET
@permission_required("cleanup.view_repository", raise_exception=True)
def repository_list(request: HtmxRequest) -> HttpResponse:
    page = _page_number(request)
    start = (page - 1) * REPOSITORIES_PAGE
    shown = list(
        _repositories().filter(deleted_at__isnull=True)[start : start + REPOSITORIES_PAGE + 1]
    )
    has_next = len(shown) > REPOSITORIES_PAGE
    repositories = _with_open_checks(shown[:REPOSITORIES_PAGE])
    registries = AwsAccount.objects.registries().select_related("cleanup_settings")
    context = {
        "repositories": repositories,
        "registries": registries,
        "base": _base(),
        "page": page,
        "has_next": has_next,
    }
    return render(request, "cleanup/repositories.html", context)


def _page_number(request: HtmxRequest) -> int:
    raw = request.GET.get("page", "")
    return int(raw) if re.fullmatch(r"[1-9][0-9]{0,5}", raw) else 1


@require_GET
@permission_required("cleanup.view_repository", raise_exception=True)
def repository_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    repository = _with_open_checks([get_object_or_404(_repositories(), pk=pk)])[0]
    show_deleted = request.GET.get("deleted") == "1"
    images = Image.objects.filter(repository=repository)
    if not show_deleted:
        images = images.present()
    page = _page_number(request)
    start = (page - 1) * IMAGES_PAGE
    shown = list(images[start : start + IMAGES_PAGE + 1])
    has_next = len(shown) > IMAGES_PAGE
    shown = shown[:IMAGES_PAGE]
    open_checks = {
        check.image_id: check
        for check in DeletionCheck.objects.filter(
            image__in=[image.pk for image in shown], status__in=DeletionCheck.OPEN
        ).only("pk", "image_id", "status")
    }
    for image in shown:
        image.open_check = open_checks.get(image.pk)
    context = {
        "repository": repository,
        "images": shown,
        "show_deleted": show_deleted,
        "page": page,
        "has_next": has_next,
    }
    return render(request, "cleanup/repository.html", context)


@require_POST
@permission_required("cleanup.optin_repository", raise_exception=True)
def repository_opt_in(request: HtmxRequest, pk: int) -> HttpResponse:
    repository = get_object_or_404(Repository.objects.select_related("account"), pk=pk)
    wanted = request.POST.get("opted_in") == "true"
    cancelled = 0
    if not wanted:
        cancelled = DeletionCheck.objects.filter(
            image__repository=repository, status__in=DeletionCheck.CANCELLABLE
        ).count()
    try:
        actions.do_set_opt_in(repository, opted_in=wanted, actor=actor_of(request))
    except CleanupAwsError as exc:
        text, level = f"ECR refused the tag change: {exc}", "error"
    else:
        level = "success"
        if wanted:
            text = f"{repository.name} opted in."
        else:
            text = f"{repository.name} opted out; {counted(cancelled, 'open check')} cancelled."
    if htmx_partial(request):
        repository = _with_open_checks([_repositories().get(pk=repository.pk)])[0]
        row = render_to_string(
            "cleanup/repositories.html#row",
            {"repository": repository, "base": _base()},
            request=request,
        )
        return _message_response(request, text, level, extra=row)
    getattr(messages, level)(request, text)
    return redirect_back(request, "cleanup:repositories")


@require_http_methods(["GET", "POST"])
@permission_required("cleanup.edit_policy_repository", raise_exception=True)
def repository_policy(request: HtmxRequest, pk: int) -> HttpResponse:
    repository = get_object_or_404(Repository.objects.select_related("account"), pk=pk)
    form = PolicyForm(request.POST or None, instance=Repository.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        changed = actions.do_update_policy(repository, actor=actor_of(request), **form.changes())
        messages.success(request, "Policy saved." if changed else "Nothing changed.")
        return redirect("cleanup:repository", pk=pk)
    return render(request, "cleanup/policy.html", {"form": form, "repository": repository})


@require_http_methods(["GET", "POST"])
@permission_required("cleanup.change_registrysettings", raise_exception=True)
def registry_settings(request: HtmxRequest, account_id: str) -> HttpResponse:
    account = get_object_or_404(AwsAccount, account_id=account_id, is_registry=True)
    row = RegistrySettings.objects.filter(account=account).first() or RegistrySettings(
        account=account
    )
    form = RegistrySettingsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        actions.do_save_registry_settings(account, actor=actor_of(request), **form.cleaned_data)
        messages.success(request, f"Cleanup settings of {account} saved.")
        return redirect("cleanup:repositories")
    return render(request, "cleanup/registry_settings.html", {"form": form, "account": account})


@require_POST
@permission_required("cleanup.protect_image", raise_exception=True)
def image_protect(request: HtmxRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("repository__account"), pk=pk)
    reason = request.POST.get("protect_reason", "").strip() or "kept by an operator"
    actions.do_protect_images([image], actor=actor_of(request), reason=reason)
    messages.success(request, f"{image.label} is protected.")
    return redirect_back(request, "cleanup:repository", pk=image.repository_id)


@require_POST
@permission_required("cleanup.protect_image", raise_exception=True)
def image_unprotect(request: HtmxRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("repository__account"), pk=pk)
    actions.do_unprotect_image(image, actor=actor_of(request))
    messages.success(request, f"{image.label} is no longer protected.")
    return redirect_back(request, "cleanup:repository", pk=image.repository_id)


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def image_check(request: HtmxRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.present().select_related("repository__account"), pk=pk)
    check = actions.do_request_check(image, actor=actor_of(request))
    messages.success(
        request, f"Check {check.pk} scheduled now; the worker decides it within a minute."
    )
    return redirect("cleanup:check", pk=check.pk)


# The deletion queue ------------------------------------------------------------------------------


def _query(**values: Any) -> str:
    return urlencode({key: value for key, value in values.items() if value not in (None, "")})


def _queue_context(request: HtmxRequest, data: Any) -> dict[str, Any]:
    """Everything the queue's page and fragments show for the filters in ``data``: a fixed
    number of queries, whatever the number of checks."""
    form = QueueFilterForm(data)
    filters, tab, page = form.filters(), form.tab, form.page_number
    matching = queue.matching(filters, clock.now())
    current = queue.in_tab(matching, tab)
    checks, has_next = queue.page_of(current, page)
    counts = queue.tab_counts(matching)
    shown = {"status": tab, **filters}
    job = BulkApproval.objects.defer("filters").first()
    if job and job.is_final and job.finished_at and job.finished_at < clock.now() - JOB_SHOWN:
        job = None  # an old job's result is in the audit history, not on the queue
    return {
        "form": form,
        "filters": filters,
        "ignored": form.ignored(),
        "status_filter": tab,
        "totalled": tab in queue.TOTALLED,
        "tab_label": QUEUE_TABS[tab][0],
        "tabs": [
            (key, label, count, _query(**{**filters, "status": key}))
            for key, label, count in counts
        ],
        "checks": checks,
        "totals": queue.totals(current)
        if tab in queue.TOTALLED
        else queue.Totals(checks=dict((k, n) for k, _, n in counts)[tab]),
        "page": page,
        "has_next": has_next,
        "here": _query(**shown, page=page if page > 1 else None),
        "previous_query": _query(**shown, page=page - 1 if page > 2 else None),
        "next_query": _query(**shown, page=page + 1),
        "filter_values": shown,
        "job": job,
        "watching": any(check.status in queue.WAITING for check in checks),
        "registries": AwsAccount.objects.registries().only("account_id", "name"),
        # Called by the template, so a fragment without the filter form does not ask for it.
        "repository_options": partial(_repository_options, filters.get("repository")),
        "can_act": _can_act(request),
    }


def _can_act(request: HtmxRequest) -> bool:
    """Whether the rows get a checkbox: only for someone who may do something with them."""
    return request.user.has_perm("cleanup.approve_deletioncheck") or request.user.has_perm(
        "cleanup.protect_image"
    )


def _repository_options(selected: int | None) -> SafeString:
    """The repository filter's options, built here: 200 of them through the template language
    cost more than the rest of the page."""
    rows = (
        Repository.objects.filter(deleted_at__isnull=True)
        .order_by("name", "region")
        .values_list("pk", "name", "region", "account__account_id")
    )
    return format_html_join(
        "",
        '<option value="{}"{}>{} ({} {})</option>',
        (
            (pk, mark_safe(" selected") if pk == selected else "", name, account_id, region)
            for pk, name, region, account_id in rows
        ),
    )


@require_GET
@permission_required("cleanup.view_deletioncheck", raise_exception=True)
def deletion_queue(request: HtmxRequest) -> HttpResponse:
    context = _queue_context(request, request.GET)
    if htmx_partial(request, "queue-head"):
        response = render(request, "cleanup/deletions.html#head", context)
        watched = request.GET.get("watch_job", "")
        job = context["job"]
        if watched.isdigit() and job and job.is_final and str(job.pk) == watched:
            response["HX-Trigger"] = "queue-reload"  # the job approved rows shown on the page
        return response
    if htmx_partial(request, "queue-rows"):
        return render(request, "cleanup/deletions.html#rows-answer", context)
    return render(request, "cleanup/deletions.html", context)


@require_GET
@permission_required("cleanup.view_deletioncheck", raise_exception=True)
def deletion_watch(request: HtmxRequest) -> HttpResponse:
    """The rows the page watches (approved, being deleted): those now final are sent out of
    band, with the event that refreshes the tabs; polling stops when none is left waiting."""
    ids = row_ids(request.GET.getlist("watch"))[:WATCH_LIMIT]
    checks = queue.rows(ids)
    changed = [check for check in checks if check.status not in queue.WAITING]
    waiting = len(checks) - len(changed)
    body = render_to_string(
        "cleanup/deletions.html#oob-rows",
        {"rows": changed, "can_act": _can_act(request)},
        request=request,
    )
    response: HttpResponse = HttpResponse(body) if waiting else HttpResponseStopPolling(body)
    if changed:
        response["HX-Trigger"] = QUEUE_CHANGED
    return response


def _back_to_queue(request: HtmxRequest) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if target.startswith("/checks/"):
        return redirect_back(request, "cleanup:deletions")
    return HttpResponseRedirect(f"{reverse('cleanup:deletions')}?{request.POST.get('back', '')}")


def _after_queue_action(
    request: HtmxRequest, ids: list[int], text: str, *, level: str = "success", clear: str = ""
) -> HttpResponse:
    """htmx: the changed rows only, the reason field cleared, the message, and the event that
    refreshes the tabs and totals. Plain form: back to the page with the message."""
    if not htmx_partial(request):
        getattr(messages, level)(request, text)
        return _back_to_queue(request)
    changed = queue.rows(ids) if ids else []
    extra = render_to_string(
        "cleanup/deletions.html#oob-rows",
        {
            "rows": changed,
            "can_act": _can_act(request),
            "clear": clear,
            "watch": any(check.status in queue.WAITING for check in changed),
        },
        request=request,
    )
    response = _message_response(request, text, level, extra=extra)
    if changed:
        response["HX-Trigger"] = QUEUE_CHANGED
    return response


def _nothing_selected(request: HtmxRequest, verb: str) -> HttpResponse:
    return _after_queue_action(
        request, [], f"Select at least one check to {verb}: nothing changed.", level="error"
    )


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def checks_approve(request: HtmxRequest) -> HttpResponse:
    if request.POST.get("all_matching") == "1":
        return _approve_all_matching(request)
    ids = row_ids(request.POST.getlist("check"))
    if not ids:
        return _nothing_selected(request, "approve")
    approved = actions.do_approve_checks(ids, actor=actor_of(request))
    text = f"Approved {counted(len(approved), 'check')}"
    if len(approved) != len(ids):
        text += (
            f" of {len(ids):,} selected ({len(ids) - len(approved):,} no longer awaiting approval)"
        )
    return _after_queue_action(request, ids, text + ".")


def _approve_all_matching(request: HtmxRequest) -> HttpResponse:
    """Every check awaiting approval that matches the page's filters, approved by the worker.
    Refused when the count is not the one the operator confirmed (the queue moved meanwhile)."""
    form = QueueFilterForm(request.POST)
    if form.ignored():
        return _after_queue_action(
            request,
            [],
            "Invalid filters: " + "; ".join(form.ignored()) + ". Nothing changed.",
            level="error",
        )
    filters = form.filters()
    awaiting = queue.in_tab(queue.matching(filters, clock.now()), "awaiting_approval")
    ids = list(awaiting.values_list("pk", flat=True))
    expected = request.POST.get("expected", "")
    if not ids:
        return _nothing_selected(request, "approve")
    if expected != str(len(ids)):
        return _after_queue_action(
            request,
            [],
            f"The queue changed: {counted(len(ids), 'check')} match now, not the {expected or '?'} "
            "you confirmed. Nothing changed; look again and confirm.",
            level="error",
        )
    totals = queue.totals(awaiting)
    job = do_start_bulk_approval(
        ids, actor=actor_of(request), filters=filters, total_bytes=totals.bytes
    )
    response = _after_queue_action(
        request,
        [],
        f"Approving {counted(job.total, 'check')} in the background; progress shows above the queue.",
    )
    if htmx_partial(request):
        response["HX-Trigger"] = QUEUE_CHANGED
    return response


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def checks_reject(request: HtmxRequest) -> HttpResponse:
    ids = row_ids(request.POST.getlist("check"))
    if not ids:
        return _nothing_selected(request, "reject")
    reason = request.POST.get("reject_reason", "").strip()[:500]
    if not reason:
        return _after_queue_action(
            request, [], "A rejection needs a reason: nothing changed.", level="error"
        )
    rejected = actions.do_reject_checks(ids, actor=actor_of(request), reason=reason)
    return _after_queue_action(
        request, ids, f"Rejected {counted(len(rejected), 'check')}.", clear="reject"
    )


@require_POST
@permission_required("cleanup.protect_image", raise_exception=True)
def checks_protect(request: HtmxRequest) -> HttpResponse:
    ids = row_ids(request.POST.getlist("check"))
    if not ids:
        return _nothing_selected(request, "protect")
    images = list(
        Image.objects.filter(checks__pk__in=ids).select_related("repository__account").distinct()
    )
    reason = request.POST.get("protect_reason", "").strip()[:500] or "kept by an operator"
    count = actions.do_protect_images(images, actor=actor_of(request), reason=reason)
    return _after_queue_action(
        request, ids, f"Protected {counted(count, 'image')}.", clear="protect"
    )


# One check ---------------------------------------------------------------------------------------


@require_GET
@permission_required("cleanup.view_deletioncheck", raise_exception=True)
def check_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    check = get_object_or_404(
        DeletionCheck.objects.select_related("image__repository__account", "snapshot"), pk=pk
    )
    context: dict[str, Any] = {
        "check": check,
        "evidence": evidence.of_check(check),
        "waiting": check.status in CHECK_WAITING,
        "confirm": _confirm_words(1, check.image.size_bytes, 1),
    }
    if htmx_partial(request, "check-state"):
        response = render(request, "cleanup/check.html#state", context)
        if not context["waiting"]:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    context["others"] = check.image.checks.exclude(pk=check.pk).order_by("-created_at")[:20]
    return render(request, "cleanup/check.html", context)


def _confirm_words(images: int, size: int, repositories: int) -> str:
    from django.template.defaultfilters import filesizeformat

    return (
        f"Delete {counted(images, 'image')}, {filesizeformat(size)}, "
        f"from {counted(repositories, 'repository,repositories')}?"
    )
