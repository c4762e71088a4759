"""Demo-only button of the breaker page: set the breaker's alarm in the sandbox AWS and deliver
the "CloudWatch Alarm State Change" event AWS would send, so a newcomer watches the breaker open,
go half-open and close. Setting OK on a breaker that is not closed first puts a few messages in
its queue, so the half-open probes have something to pass. 404 unless CONSOLE_SANDBOX is on."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST

from breaker.models import Breaker, alarm_name_of
from sandbox import aws

DEMO_MESSAGES = 3
STATES = {
    "ALARM": "Threshold Crossed: errors above 5 (sandbox)",
    "OK": "Threshold Crossed: errors back to 0 (sandbox)",
}


def alarm_event(alarm: dict, previous: str) -> dict:
    """The EventBridge event CloudWatch sends for this alarm's current state."""
    _, _, _, region, account, _ = alarm["AlarmArn"].split(":", 5)
    changed = alarm["StateUpdatedTimestamp"]
    stamp = changed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{changed.microsecond // 1000:03d}+0000"
    return {
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "region": region,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {
                "value": alarm["StateValue"],
                "reason": alarm.get("StateReason", ""),
                "timestamp": stamp,
            },
            "previousState": {"value": previous, "reason": "", "timestamp": stamp},
        },
    }


@require_POST
@permission_required("breaker.trip_breaker", raise_exception=True)
def set_breaker_alarm(request: HttpRequest, pk: int) -> HttpResponse:
    if not settings.SANDBOX:
        raise Http404("sandbox only")
    breaker = get_object_or_404(Breaker.objects.select_related("account"), pk=pk)
    state = request.POST.get("state", "")
    if state not in STATES or not breaker.alarms:
        raise Http404("unknown alarm state")
    name = alarm_name_of(breaker.alarms[0])
    if state == "OK" and breaker.state != Breaker.State.CLOSED:
        # Work for the probes: the mapping is off while the breaker is open, so these wait in
        # the queue and go through the function one at a time as the breaker half-opens.
        sqs = aws.client(breaker.account.account_id, "sqs", breaker.region)
        for number in range(1, DEMO_MESSAGES + 1):
            sqs.send_message(
                QueueUrl=breaker.queue_url,
                MessageBody=json.dumps({"order": number, "demo": True}),
                MessageAttributes={"source": {"DataType": "String", "StringValue": "sandbox"}},
            )
    cloudwatch = aws.client(breaker.account.account_id, "cloudwatch", breaker.region)
    previous = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=STATES[state])
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    aws.deliver(alarm_event(alarm, previous))
    messages.success(
        request, f"Sandbox: {name} is {state}; its event is in the inbox for the worker."
    )
    return redirect("breaker:detail", pk=breaker.pk)


urlpatterns = [path("breakers/<int:pk>/alarm/", set_breaker_alarm, name="breaker-alarm")]
