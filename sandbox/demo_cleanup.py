"""Demo-only button of the cleanup pages: deregister a task definition in the sandbox AWS and
deliver the CloudTrail event AWS would send, so a newcomer watches a check being scheduled.
404 unless CONSOLE_SANDBOX is on."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from sandbox import aws

WORKLOAD_ACCOUNTS = [aws.PRODUCTION, aws.DEVELOPMENT]


def deregistration_event(account_id: str, definition: dict) -> dict:
    """The "AWS API Call via CloudTrail" event of a DeregisterTaskDefinition call."""
    return {
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": account_id,
        "region": aws.DEMO_REGION,
        "detail": {
            "eventSource": "ecs.amazonaws.com",
            "eventName": "DeregisterTaskDefinition",
            "awsRegion": aws.DEMO_REGION,
            "recipientAccountId": account_id,
            "requestParameters": {"taskDefinition": definition["taskDefinitionArn"]},
            "responseElements": {"taskDefinition": json.loads(json.dumps(definition, default=str))},
        },
    }


def _active_task_definitions() -> list[tuple[str, str]]:
    found = []
    for account in WORKLOAD_ACCOUNTS:
        ecs = aws.client(account.account_id, "ecs")
        for arn in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]:
            found.append((account.account_id, arn))
    return found


@require_http_methods(["GET", "POST"])
@permission_required("cleanup.approve_deletioncheck", raise_exception=True)
def deregister_task_definition(request: HttpRequest) -> HttpResponse:
    if not settings.SANDBOX:
        raise Http404("sandbox only")
    choices = _active_task_definitions()
    if request.method == "GET":
        return render(request, "cleanup/sandbox_deregister.html", {"choices": choices})
    account_id, _, arn = request.POST.get("task_definition", "").partition("|")
    if (account_id, arn) not in choices:
        raise Http404("not an ACTIVE task definition of the sandbox")
    definition = aws.client(account_id, "ecs").deregister_task_definition(taskDefinition=arn)
    aws.deliver(deregistration_event(account_id, definition["taskDefinition"]))
    messages.success(
        request,
        f"Sandbox: {arn.rsplit('/', 1)[-1]} deregistered in {account_id}; its CloudTrail event is in the inbox for the worker.",
    )
    return redirect("/inbox/")


urlpatterns = [
    path("cleanup/deregister/", deregister_task_definition, name="cleanup-deregister"),
]
