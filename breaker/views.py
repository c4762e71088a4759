import hashlib
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Max, OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import AwsAccount
from breaker import actions, timeline
from breaker.forms import AddBreakerForm, SettingsForm, TargetForm
from breaker.models import Breaker, BreakerQuerySet, BreakerTransition, Probe
from console import clock
from console.http import HtmxRequest, actor_of, htmx_partial

UNCHANGED = 204  # htmx swaps nothing on 204: a poll that finds nothing new costs no redraw
# Not part of what a reader sees: the reconcile stamps it every minute.
_NOT_SHOWN = {"mapping_checked_at", "probe_lease_until", "probe_lease_owner"}


def _stamp(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def _panel_version(breaker: Breaker) -> str:
    """Changes whenever anything the panel shows changes: the row, a new transition or probe.
    The page polls with the version it shows, and gets 204 while it still holds."""
    fields = [
        getattr(breaker, f.attname)
        for f in Breaker._meta.concrete_fields
        if f.name not in _NOT_SHOWN
    ]
    return _stamp(
        fields,
        getattr(breaker, "last_transition_id", None),
        getattr(breaker, "last_probe_id", None),
    )


def _with_latest(queryset: BreakerQuerySet) -> BreakerQuerySet:
    transitions = BreakerTransition.objects.filter(breaker=OuterRef("pk")).order_by("-id")
    probes = Probe.objects.filter(breaker=OuterRef("pk")).order_by("-id")
    return queryset.annotate(
        last_transition_id=Subquery(transitions.values("id")[:1]),
        last_probe_id=Subquery(probes.values("id")[:1]),
    )


def _list_version(breakers: list[Breaker]) -> str:
    latest = BreakerTransition.objects.aggregate(latest=Max("id"))["latest"]
    return _stamp(
        [
            (b.pk, b.state, b.mode, b.mapping_state, b.mapping_error, b.broken, b.alarm_summary)
            for b in breakers
        ],
        [(b.pk, b.mapping_settling) for b in breakers],
        latest,
    )


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
    """The table polls every 5 s with the version it shows: a breaker tripped elsewhere (the
    CLI, an alarm) shows within 5 s, and an unchanged table costs a 204 and no redraw."""
    breakers = list(_listing())
    version = _list_version(breakers)
    watching = any(b.state != Breaker.State.CLOSED or b.mapping_settling for b in breakers)
    context = {"breakers": breakers, "watching": watching, "version": version}
    if htmx_partial(request, "breakers"):
        if request.GET.get("v") == version:
            return HttpResponse(status=UNCHANGED)
        return render(request, "breaker/list.html#table", context)
    return render(request, "breaker/list.html", context)


def _window(request: HtmxRequest) -> str:
    window = request.GET.get("window") or request.POST.get("window") or ""
    return window if window in timeline.WINDOWS else timeline.DEFAULT_WINDOW


def _detail_context(breaker: Breaker, window: str) -> dict[str, Any]:
    return {
        "breaker": breaker,
        "transitions": breaker.transitions.all()[:50],
        "probes": breaker.probes.all()[:20],
        "timeline": timeline.build(breaker, now=clock.now(), window=window),
        "windows": [(key, timeline.WINDOW_WORDS[key]) for key in timeline.WINDOWS],
        "version": _panel_version(breaker),
    }


def _load(pk: int) -> Breaker:
    return get_object_or_404(_with_latest(Breaker.objects.select_related("account")), pk=pk)


@require_GET
@permission_required("breaker.view_breaker", raise_exception=True)
def breaker_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    """The panel polls every 5 s in every state, with the version it shows: a trip made
    elsewhere (the CLI, an alarm, the worker finishing a mapping change) appears within one
    interval; while nothing changed the poll is one query and a 204 (nothing redrawn, focus and
    typing left alone)."""
    breaker = _load(pk)
    window = _window(request)
    if htmx_partial(request, "breaker-panel"):
        if request.GET.get("v") == _panel_version(breaker):
            return HttpResponse(status=UNCHANGED)
        return render(request, "breaker/detail.html#panel", _detail_context(breaker, window))
    return render(request, "breaker/detail.html", _detail_context(breaker, window))


def _after_action(
    request: HtmxRequest, breaker: Breaker, done: str = "", error: str = ""
) -> HttpResponse:
    """htmx: the refreshed panel (with the outcome in it); plain POST: back to the page."""
    breaker = _load(breaker.pk)
    if htmx_partial(request):
        context = {**_detail_context(breaker, _window(request)), "done": done, "error": error}
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
        done=f"{breaker.name} tripped: it stays open until reset. The worker disables the mapping "
        f"of {breaker.function_name}; messages wait in the queue.",
    )


@require_POST
@permission_required("breaker.trip_breaker", raise_exception=True)
def breaker_reset(request: HtmxRequest, pk: int) -> HttpResponse:
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    actions.do_reset(
        breaker, actor=actor_of(request), reason=request.POST.get("reason", ""), in_worker=True
    )
    return _after_action(
        request,
        breaker,
        done=f"{breaker.name} reset: closed. The worker enables the mapping of "
        f"{breaker.function_name}.",
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
