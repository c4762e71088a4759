from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import AwsAccount
from cleanup import actions
from cleanup.aws import CleanupAwsError
from cleanup.forms import PolicyForm, ReasonForm, RegistrySettingsForm
from cleanup.models import DeletionCheck, Image, RegistrySettings, Repository
from console.http import HtmxRequest, actor_of, htmx_partial, redirect_back, row_ids

QUEUE_LIMIT = 300
QUEUE_FILTERS = {
    "awaiting_approval": ("Awaiting approval", ["awaiting_approval"]),
    "scheduled": ("Scheduled", ["scheduled", "running"]),
    "failed": ("Failed", ["failed"]),
    "approved": ("Approved", ["approved"]),
    "closed": ("Closed", ["deleted", "in_use", "rejected", "cancelled"]),
}


def _repositories() -> QuerySet[Repository]:
    return Repository.objects.select_related("account").annotate(
        image_count=Count("images", filter=Q(images__deleted_at__isnull=True))
    )


def _reclaimable_by_repository() -> dict[int, int]:
    rows = (
        DeletionCheck.objects.filter(status__in=["awaiting_approval", "approved"])
        .values("image__repository_id")
        .annotate(total=Sum("image__size_bytes"))
    )
    return {row["image__repository_id"]: row["total"] or 0 for row in rows}


@require_GET
@permission_required("cleanup.view_repository", raise_exception=True)
def repository_list(request: HtmxRequest) -> HttpResponse:
    repositories = list(_repositories().filter(deleted_at__isnull=True))
    reclaimable = _reclaimable_by_repository()
    for repository in repositories:
        repository.reclaimable = reclaimable.get(repository.pk, 0)
    registries = AwsAccount.objects.registries()
    return render(
        request,
        "cleanup/repositories.html",
        {"repositories": repositories, "registries": registries},
    )


@require_GET
@permission_required("cleanup.view_repository", raise_exception=True)
def repository_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    repository = get_object_or_404(_repositories(), pk=pk)
    repository.reclaimable = _reclaimable_by_repository().get(repository.pk, 0)
    show_deleted = request.GET.get("deleted") == "1"
    images = Image.objects.filter(repository=repository)
    if not show_deleted:
        images = images.present()
    open_checks = {
        check.image_id: check
        for check in DeletionCheck.objects.filter(
            image__repository=repository, status__in=DeletionCheck.OPEN
        )
    }
    shown = list(images[:1000])
    for image in shown:
        image.open_check = open_checks.get(image.pk)
    context = {"repository": repository, "images": shown, "show_deleted": show_deleted}
    return render(request, "cleanup/repository.html", context)


def _row_response(request: HtmxRequest, repository: Repository) -> HttpResponse:
    repository = _repositories().get(pk=repository.pk)
    repository.reclaimable = _reclaimable_by_repository().get(repository.pk, 0)
    return render(request, "cleanup/repositories.html#row", {"repository": repository})


@require_POST
@permission_required("cleanup.optin_repository", raise_exception=True)
def repository_opt_in(request: HtmxRequest, pk: int) -> HttpResponse:
    repository = get_object_or_404(Repository.objects.select_related("account"), pk=pk)
    wanted = request.POST.get("opted_in") == "true"
    try:
        actions.do_set_opt_in(repository, opted_in=wanted, actor=actor_of(request))
    except CleanupAwsError as exc:
        messages.error(request, f"ECR refused the tag change: {exc}")
    else:
        messages.success(request, f"{repository.name} {'opted in' if wanted else 'opted out'}.")
    if htmx_partial(request):
        return _row_response(request, repository)
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
    reason = request.POST.get("reason", "").strip() or "kept by an operator"
    actions.do_protect_images([image], actor=actor_of(request), reason=reason)
    messages.success(request, f"{image.label} is protected.")
    return redirect("cleanup:repository", pk=image.repository_id)


@require_POST
@permission_required("cleanup.protect_image", raise_exception=True)
def image_unprotect(request: HtmxRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("repository__account"), pk=pk)
    actions.do_unprotect_image(image, actor=actor_of(request))
    messages.success(request, f"{image.label} is no longer protected.")
    return redirect("cleanup:repository", pk=image.repository_id)


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def image_check(request: HtmxRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.present().select_related("repository__account"), pk=pk)
    check = actions.do_request_check(image, actor=actor_of(request))
    messages.success(
        request, f"Check {check.pk} scheduled now; the worker decides it within a minute."
    )
    return redirect("cleanup:check", pk=check.pk)


def _queue(status_filter: str) -> QuerySet[DeletionCheck]:
    _, statuses = QUEUE_FILTERS[status_filter]
    return (
        DeletionCheck.objects.filter(status__in=statuses)
        .select_related("image__repository__account")
        .order_by("-updated_at", "-id")
    )


@require_GET
@permission_required("cleanup.view_deletioncheck", raise_exception=True)
def deletion_queue(request: HtmxRequest) -> HttpResponse:
    status_filter = request.GET.get("status", "awaiting_approval")
    if status_filter not in QUEUE_FILTERS:
        status_filter = "awaiting_approval"
    checks = list(_queue(status_filter)[:QUEUE_LIMIT])
    counts = dict(
        DeletionCheck.objects.values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    filters = [
        (key, label, sum(counts.get(status, 0) for status in statuses))
        for key, (label, statuses) in QUEUE_FILTERS.items()
    ]
    context = {
        "checks": checks,
        "status_filter": status_filter,
        "filters": filters,
        "total_bytes": sum(check.image.size_bytes for check in checks),
    }
    return render(request, "cleanup/deletions.html", context)


def _selected(request: HtmxRequest) -> list[int]:
    return row_ids(request.POST.getlist("check"))


def _after_queue_action(request: HtmxRequest, ids: list[int], message: str) -> HttpResponse:
    if htmx_partial(request):
        status_filter = request.POST.get("status", "awaiting_approval")
        if status_filter not in QUEUE_FILTERS:
            status_filter = "awaiting_approval"
        shown = {check.pk: check for check in _queue(status_filter)[:QUEUE_LIMIT]}
        for check in DeletionCheck.objects.filter(pk__in=ids).select_related(
            "image__repository__account"
        ):
            shown[check.pk] = check
        checks = sorted(shown.values(), key=lambda check: -check.pk)
        response = render(
            request, "cleanup/deletions.html#rows", {"checks": checks, "message": message}
        )
        return response
    messages.success(request, message)
    status_filter = request.POST.get("status", "awaiting_approval")
    if status_filter not in QUEUE_FILTERS:
        status_filter = "awaiting_approval"
    return redirect(f"{reverse('cleanup:deletions')}?status={status_filter}")


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def checks_approve(request: HtmxRequest) -> HttpResponse:
    ids = _selected(request)
    approved = actions.do_approve_checks(ids, actor=actor_of(request))
    return _after_queue_action(
        request, ids, f"Approved {len(approved)} of {len(ids)} selected checks."
    )


@require_POST
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def checks_reject(request: HtmxRequest) -> HttpResponse:
    ids = _selected(request)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        if htmx_partial(request):  # the rows as they were, and the reason why
            return _after_queue_action(request, [], "A rejection needs a reason: nothing changed.")
        messages.error(request, "A rejection needs a reason.")
        return redirect("cleanup:deletions")
    rejected = actions.do_reject_checks(
        ids, actor=actor_of(request), reason=form.cleaned_data["reason"]
    )
    return _after_queue_action(request, ids, f"Rejected {len(rejected)} checks.")


@require_POST
@permission_required("cleanup.protect_image", raise_exception=True)
def checks_protect(request: HtmxRequest) -> HttpResponse:
    ids = _selected(request)
    images = list(
        Image.objects.filter(checks__pk__in=ids).select_related("repository__account").distinct()
    )
    reason = request.POST.get("reason", "").strip() or "kept by an operator"
    count = actions.do_protect_images(images, actor=actor_of(request), reason=reason)
    return _after_queue_action(request, ids, f"Protected {count} images.")


@require_GET
@permission_required("cleanup.view_deletioncheck", raise_exception=True)
def check_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    check = get_object_or_404(
        DeletionCheck.objects.select_related("image__repository__account", "snapshot"), pk=pk
    )
    others = check.image.checks.exclude(pk=check.pk).order_by("-created_at")[:20]
    return render(request, "cleanup/check.html", {"check": check, "others": others})
