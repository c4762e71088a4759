from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from console.http import HtmxRequest, actor_of, htmx_partial
from notify import actions
from notify.forms import ChannelForm
from notify.models import Channel, Delivery

DELIVERIES_PER_PAGE = 50
UNSETTLED = [Delivery.Status.PENDING, Delivery.Status.SENDING]


@require_GET
@permission_required("notify.view_channel", raise_exception=True)
def channel_list(request: HtmxRequest) -> HttpResponse:
    actions.sync_environment_channels()
    channels = Channel.objects.prefetch_related("accounts")
    return render(request, "notify/channels.html", {"channels": channels})


@require_GET
@permission_required("notify.view_channel", raise_exception=True)
def channel_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel.objects.prefetch_related("accounts"), pk=pk)
    page = Paginator(channel.deliveries.all(), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    deliveries = list(page)
    # Only the newest page watches deliveries on their way.
    unsettled = page.number == 1 and any(d.status in UNSETTLED for d in deliveries)
    context = {"channel": channel, "deliveries": deliveries, "page": page, "unsettled": unsettled}
    if htmx_partial(request, "deliveries"):
        response = render(request, "notify/channel.html#deliveries", context)
        return response if unsettled else HttpResponseStopPolling(response.content)
    return render(request, "notify/channel.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required("notify.add_channel", raise_exception=True)
def channel_add(request: HtmxRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = actions.do_save_channel(None, actor=actor_of(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Channel {channel} added. Send it a test.")
            return redirect("notify:channel", pk=channel.pk)
    return render(request, "notify/form.html", {"form": form, "title": "Add a channel"})


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required("notify.change_channel", raise_exception=True)
def channel_edit(request: HtmxRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk, source=Channel.Source.CONSOLE)
    form = ChannelForm(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_save_channel(channel, actor=actor_of(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Channel {channel} saved.")
            return redirect("notify:channel", pk=channel.pk)
    context = {"form": form, "title": f"Edit {channel}", "channel": channel}
    return render(request, "notify/form.html", context)


@require_POST
@permission_required("notify.delete_channel", raise_exception=True)
def channel_delete(request: HtmxRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk, source=Channel.Source.CONSOLE)
    actions.do_delete_channel(channel, actor=actor_of(request))
    messages.success(request, f"Channel {channel} deleted.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("notify:channels"))
    return redirect("notify:channels")


@require_POST
@permission_required("notify.test_channel", raise_exception=True)
def channel_test(request: HtmxRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    actions.do_send_test(channel, actor=actor_of(request))
    messages.success(request, "Test queued: the worker sends it, its outcome shows below.")
    return redirect("notify:channel", pk=channel.pk)
