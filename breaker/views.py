from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import AwsAccount
from breaker import actions
from breaker.forms import AddBreakerForm, SettingsForm, TargetForm
from breaker.models import Breaker, BreakerQuerySet, BreakerTransition
from console.http import HtmxRequest, actor_of, htmx_partial

POLL_STOP = 286  # htmx stops polling on this status (django-htmx's HttpResponseStopPolling)


def _listing() -> BreakerQuerySet:
    last = BreakerTransition.objects.filter(breaker=OuterRef("pk")).order_by("-at", "-id")
    return (
        Breaker.objects.select_related("account")
        .attention_first()
        .annotate(
            last_to=Subquery(last.values("to_state")[:1]),
            last_cause=Subquery(last.values("cause")[:1]),
            last_at=Subquery(last.values("at")[:1]),
        )
    )


@require_GET
@permission_required("breaker.view_breaker", raise_exception=True)
def breaker_list(request: HtmxRequest) -> HttpResponse:
    breakers = list(_listing())
    watching = any(b.state != Breaker.State.CLOSED for b in breakers)
    context = {"breakers": breakers, "watching": watching}
    if htmx_partial(request, "breakers"):
        # Polling: the fresh table; once every breaker is closed, tell htmx to stop asking.
        return render(
            request, "breaker/list.html#table", context, status=200 if watching else POLL_STOP
        )
    return render(request, "breaker/list.html", context)


def _detail_context(breaker: Breaker) -> dict[str, Any]:
    return {
        "breaker": breaker,
        "transitions": breaker.transitions.all()[:50],
        "probes": breaker.probes.all()[:20],
    }


@require_GET
@permission_required("breaker.view_breaker", raise_exception=True)
def breaker_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    if htmx_partial(request, "breaker-panel"):
        watching = breaker.state != Breaker.State.CLOSED or breaker.mapping_settling
        return render(
            request,
            "breaker/detail.html#panel",
            _detail_context(breaker),
            status=200 if watching else POLL_STOP,
        )
    return render(request, "breaker/detail.html", _detail_context(breaker))


def _after_action(
    request: HtmxRequest, breaker: Breaker, done: str = "", error: str = ""
) -> HttpResponse:
    """htmx: the refreshed panel (with the outcome in it); plain POST: back to the page."""
    breaker.refresh_from_db()
    if htmx_partial(request):
        context = {**_detail_context(breaker), "done": done, "error": error}
        return render(request, "breaker/detail.html#panel", context)
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, done)
    return redirect("breaker:detail", pk=breaker.pk)


def _message(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@require_POST
@permission_required("breaker.trip_breaker", raise_exception=True)
def breaker_trip(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    try:
        actions.do_trip(
            breaker, actor=actor_of(request), reason=request.POST.get("reason", ""), in_worker=True
        )
    except ValidationError as exc:
        return _after_action(request, breaker, error=_message(exc))
    return _after_action(
        request,
        breaker,
        done=f"{breaker.name} tripped: it stays open until reset. The worker disables the mapping.",
    )


@require_POST
@permission_required("breaker.trip_breaker", raise_exception=True)
def breaker_reset(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    actions.do_reset(
        breaker, actor=actor_of(request), reason=request.POST.get("reason", ""), in_worker=True
    )
    return _after_action(
        request, breaker, done=f"{breaker.name} reset: closed. The worker enables the mapping."
    )


@require_POST
@permission_required("breaker.probe_breaker", raise_exception=True)
def breaker_probe(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    try:
        actions.do_probe_now(breaker, actor=actor_of(request), in_worker=True)
    except ValidationError as exc:
        return _after_action(request, breaker, error=_message(exc))
    return _after_action(
        request, breaker, done="Probe requested: the worker sends one message through now."
    )


@require_POST
@permission_required("breaker.manage_breaker", raise_exception=True)
def breaker_manage(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    managed = request.POST.get("managed") == "on"
    actions.do_set_managed(breaker, managed=managed, actor=actor_of(request))
    return _after_action(
        request,
        breaker,
        done="Management on."
        if managed
        else "Management off: the console leaves the mapping alone.",
    )


@require_http_methods(["GET", "POST"])
@permission_required("breaker.change_breaker", raise_exception=True)
def breaker_edit(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    form = SettingsForm(request.POST or None, instance=Breaker.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            changed = actions.do_update_settings(
                breaker, actor=actor_of(request), **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, f"Saved {', '.join(changed)}." if changed else "Nothing changed."
            )
            return redirect("breaker:detail", pk=breaker.pk)
    return render(
        request,
        "breaker/form.html",
        {"form": form, "title": f"Settings of {breaker.name}", "breaker": breaker},
    )


@require_http_methods(["GET", "POST"])
@permission_required("breaker.add_breaker", raise_exception=True)
def breaker_add(request: HtmxRequest) -> HttpResponse:
    """Pick an account and region; the page then lists the functions with SQS mappings and the
    alarms found there (loaded again by htmx whenever either changes)."""
    data = request.POST if request.method == "POST" else request.GET
    target = TargetForm(data or None, initial={"region": _default_region()})
    form, discovery_error = None, ""
    if target.is_valid():
        account: AwsAccount = target.cleaned_data["account"]
        region = target.cleaned_data["region"]
        try:
            found = actions.discover_targets(account, region)
        except actions.DiscoveryError as exc:
            discovery_error = str(exc)
        else:
            post = request.POST if request.method == "POST" and "name" in request.POST else None
            form = AddBreakerForm(post, mappings=found.mappings, alarms=found.alarms)
            if post is not None and form.is_valid():
                mapping = form.mappings[form.cleaned_data["mapping"]]
                settings = {
                    k: v
                    for k, v in form.cleaned_data.items()
                    if k in actions.SETTINGS_FIELDS and k != "alarms"
                }
                try:
                    breaker = actions.do_add_breaker(
                        actor=actor_of(request),
                        name=form.cleaned_data["name"],
                        account=account,
                        region=region,
                        function_name=mapping.function_name,
                        mapping_uuid=mapping.uuid,
                        alarms=form.cleaned_data["alarms"],
                        **settings,
                    )
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    messages.success(request, f"Breaker {breaker.name} added.")
                    return redirect("breaker:detail", pk=breaker.pk)
    context = {"target": target, "form": form, "discovery_error": discovery_error}
    if htmx_partial(request) and request.method == "GET":
        return render(request, "breaker/add.html#choices", context)
    return render(request, "breaker/add.html", context)


def _default_region() -> str:
    from django.conf import settings

    return settings.AWS_DEFAULT_REGION
