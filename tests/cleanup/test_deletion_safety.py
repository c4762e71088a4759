"""Every deletion safety rule of DESIGN.md holds at the moment BatchDeleteImage is called.

Each test approves a deletion first and only then changes the world, so it fails if the rule is
not checked again at deletion time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from accounts import aws as accounts_aws
from audit.models import AuditEvent
from cleanup import actions
from cleanup import aws as cleanup_aws
from cleanup.models import DeletionCheck, Image, RegistrySettings, Repository
from scenarios import clients
from scenarios.lambdas import image_function
from tests.cleanup.conftest import DEV, NOW, PROD, REGION, age, cloudtrail_event, uri

LATER = NOW + timedelta(minutes=5)


def approve_everything(now=NOW) -> list[int]:
    actions.do_sync_inventory(now=now)
    actions.do_sweep(now=now)
    actions.do_run_due_checks(now=now)
    ids = list(
        DeletionCheck.objects.filter(status="awaiting_approval").values_list("id", flat=True)
    )
    actions.do_approve_checks(ids, actor="oscar", now=now)
    return ids


def check_of(digest: str) -> DeletionCheck:
    return DeletionCheck.objects.filter(image__digest=digest).latest("id")


@pytest.fixture
def delete_calls(world):
    """A spy on the real BatchDeleteImage calls the console's ECR client makes."""
    calls: list[int] = []
    ecr = accounts_aws.client(world.registry, REGION, "ecr")

    def count(params, **kwargs):
        calls.append(len(params["imageIds"]))

    ecr.meta.events.register("before-parameter-build.ecr.BatchDeleteImage", count)
    yield calls
    ecr.meta.events.unregister("before-parameter-build.ecr.BatchDeleteImage", count)


def test_it_deletes_an_approved_unused_image_by_digest(world, delete_calls):
    world.repository("web")
    old = world.push("web", "v1")
    approve_everything()
    result = actions.do_delete_images([check_of(old).pk], now=LATER)
    assert result.deleted == [check_of(old).pk]
    assert old not in world.ecr_digests("web")
    assert delete_calls == [1]


def test_it_keeps_an_image_referenced_by_digest(world, delete_calls):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    world.register(world.dev, "pinned", [uri("web", f"@{digest}")])
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    assert DeletionCheck.objects.get(pk=check).status == "in_use"
    assert delete_calls == []


def test_it_keeps_an_image_whose_tag_moved_while_a_running_task_still_runs_its_digest(
    world, monkeypatch
):
    world.repository("web")
    running = world.push("web", "v1")
    world.retag("web", running, "build-41")
    check = approve_everything()[0]
    world.push("web", "v1")  # the tag moves to a new image (build-41 keeps the old one in moto)
    world.register(world.prod, "web", [uri("web", ":v1")])
    real = cleanup_aws.list_running_tasks

    def tasks(account, region, clusters):
        if account.account_id == PROD:
            return [
                cleanup_aws.TaskInfo(
                    "main",
                    "arn:aws:ecs:eu-west-1:222222222222:task/main/abc",
                    "web:1",
                    [(uri("web", ":v1"), running)],
                )
            ]
        return real(account, region, clusters)

    monkeypatch.setattr(cleanup_aws, "list_running_tasks", tasks)
    actions.do_delete_images([check], now=LATER)
    assert running in world.ecr_digests("web")
    assert (
        DeletionCheck.objects.get(pk=check).evidence["references"][0]["source"]
        == "ecs_running_tasks"
    )


def test_it_keeps_an_image_used_only_by_a_service_running_an_inactive_revision(world):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    arn = world.register(world.prod, "web", [uri("web", ":v1")])
    world.service(world.prod, "web", arn)
    world.deregister(world.prod, arn)
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    refs = DeletionCheck.objects.get(pk=check).evidence["references"]
    assert [ref["source"] for ref in refs] == ["ecs_services"]


def test_it_keeps_an_image_used_in_another_account_than_the_one_that_deregistered(
    world, monkeypatch
):
    monkeypatch.setattr("console.clock.now", lambda: NOW)
    world.repository("web")
    digest = world.push("web", "v1")
    arn = world.register(world.prod, "web", [uri("web", ":v1")])
    world.register(world.dev, "web", [uri("web", ":v1")])
    actions.do_sync_inventory(now=NOW)
    from types import SimpleNamespace

    from cleanup import handlers

    handlers.on_task_definition_deregistered(
        SimpleNamespace(
            payload=cloudtrail_event(PROD, world.deregister(world.prod, arn)),
            actor="webhook:eventbridge",
        )
    )
    actions.do_run_due_checks(now=NOW)
    check = check_of(digest)
    assert check.status == "in_use"
    assert {ref["account_id"] for ref in check.evidence["references"]} == {DEV}
    assert digest in world.ecr_digests("web")


def test_it_keeps_a_child_of_a_kept_index(world):
    world.repository("multi")
    amd, arm = world.push("multi"), world.push("multi")
    index = world.push_index("multi", "v1", [amd, arm])
    approve_everything()
    Repository.objects.filter(name="multi").update(keep_tag_pattern=r"v\d+")
    child_checks = [check_of(amd).pk, check_of(arm).pk]
    actions.do_delete_images(child_checks, now=LATER)
    assert {amd, arm, index} <= world.ecr_digests("multi")
    assert "child of index" in check_of(amd).decision_reason


def test_it_keeps_the_children_of_an_index_that_is_not_deleted_in_the_same_run(world):
    world.repository("multi")
    amd = world.push("multi")
    index = world.push_index("multi", "v1", [amd])
    approve_everything()
    actions.do_delete_images([check_of(amd).pk], now=LATER)
    assert {amd, index} <= world.ecr_digests("multi")


def test_it_keeps_the_children_of_an_index_referenced_by_tag(world):
    world.repository("multi")
    amd = world.push("multi")
    world.push_index("multi", "v1", [amd])
    ids = approve_everything()
    world.register(world.prod, "multi", [uri("multi", ":v1")])
    actions.do_delete_images(ids, now=LATER)
    assert amd in world.ecr_digests("multi")
    assert check_of(amd).status == "in_use"


def test_it_deletes_an_index_before_its_children(world, monkeypatch):
    world.repository("multi")
    amd, arm = world.push("multi"), world.push("multi")
    index = world.push_index("multi", "v1", [amd, arm])
    ids = approve_everything()
    order: list[list[str]] = []
    real = cleanup_aws.batch_delete_images

    def spy(account, region, repository, digests):
        order.append(list(digests))
        return real(account, region, repository, digests)

    monkeypatch.setattr(cleanup_aws, "batch_delete_images", spy)
    actions.do_delete_images(ids, now=LATER)
    assert len(order) == 2
    assert order[0] == [index] and set(order[1]) == {amd, arm}
    assert not ({amd, arm, index} & world.ecr_digests("multi"))


def test_it_keeps_a_protected_image(world):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    image = Image.objects.get(digest=digest)
    Image.objects.filter(pk=image.pk).update(protected=True, protected_by="oscar")
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    assert DeletionCheck.objects.get(pk=check).decision_reason == "protected by an operator"


def test_it_keeps_the_newest_n(world):
    world.repository("web")
    older = world.push("web", "v1")
    newest = world.push("web", "v2")
    age("web", older, NOW - timedelta(days=2))
    age("web", newest, NOW - timedelta(days=1))
    ids = approve_everything()
    Repository.objects.filter(name="web").update(keep_newest=1)
    actions.do_delete_images(ids, now=LATER)
    assert newest in world.ecr_digests("web")
    assert older not in world.ecr_digests("web")


def test_it_keeps_a_tag_matching_the_keep_pattern(world):
    world.repository("web")
    release = world.push("web", "release-1.0")
    scratch = world.push("web", "pr-17")
    ids = approve_everything()
    Repository.objects.filter(name="web").update(keep_tag_pattern=r"release-.*")
    actions.do_delete_images(ids, now=LATER)
    assert release in world.ecr_digests("web")
    assert scratch not in world.ecr_digests("web")


def test_it_never_touches_a_repository_without_the_opt_in_tag(world, delete_calls):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    # Someone removes the tag in ECR directly (infrastructure code): the console has not synced.
    ecr = accounts_aws.client(world.registry, REGION, "ecr")
    ecr.untag_resource(resourceArn=Repository.objects.get(name="web").arn, tagKeys=["ecr-cleanup"])
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    assert DeletionCheck.objects.get(pk=check).status == "cancelled"
    assert delete_calls == []


def test_events_and_sweeps_never_schedule_in_a_repository_without_the_opt_in_tag(
    world, monkeypatch
):
    monkeypatch.setattr("console.clock.now", lambda: NOW)
    world.repository("private", opted_in=False)
    digest = world.push("private", "v1")
    arn = world.register(world.prod, "private", [uri("private", ":v1")])
    actions.do_sync_inventory(now=NOW)
    outcome = actions.do_schedule_for_inactive_task_definitions(
        account_id=PROD, region=REGION, definitions=[(arn, None)], actor="webhook:sns", now=NOW
    )
    assert (
        outcome.scheduled == [] and "not in a registered opted-in repository" in outcome.summary()
    )
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    assert not DeletionCheck.objects.exists()
    assert digest in world.ecr_digests("private")


def test_it_keeps_an_image_reused_between_approval_and_deletion(world):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    world.register(world.prod, "web", [uri("web", ":v1")])
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    assert DeletionCheck.objects.get(pk=check).status == "in_use"


def test_it_keeps_an_image_referenced_by_a_lambda_function(world):
    world.repository("fn")
    digest = world.push("fn", "v1")
    check = approve_everything()[0]
    image_function(clients.for_account(world.prod), "worker", uri("fn", ":v1"))
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("fn")
    assert (
        DeletionCheck.objects.get(pk=check).evidence["references"][0]["source"]
        == "lambda_functions"
    )


def test_it_keeps_an_image_found_only_by_the_config_aggregator(world, monkeypatch):
    from botocore.stub import ANY, Stubber

    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    RegistrySettings.objects.create(account=world.registry, config_aggregator_name="org")
    config = accounts_aws.client(world.registry, REGION, "config")
    row = {
        "accountId": "444444444444",
        "awsRegion": "us-east-1",
        "configuration": {
            "TaskDefinitionArn": "arn:aws:ecs:us-east-1:444444444444:task-definition/legacy:3",
            "ContainerDefinitions": [{"Image": uri("web", ":v1")}],
        },
    }
    with Stubber(config) as stub:
        stub.add_response(
            "select_aggregate_resource_config",
            {"Results": [json.dumps(row)]},
            {"Expression": ANY, "ConfigurationAggregatorName": "org", "Limit": 100},
        )
        actions.do_delete_images([check], now=LATER)
        stub.assert_no_pending_responses()
    assert digest in world.ecr_digests("web")
    assert (
        DeletionCheck.objects.get(pk=check).evidence["references"][0]["source"]
        == "config_aggregator"
    )


def test_a_failing_config_aggregator_fails_the_check(world):
    from botocore.stub import Stubber

    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    RegistrySettings.objects.create(account=world.registry, config_aggregator_name="org")
    config = accounts_aws.client(world.registry, REGION, "config")
    with Stubber(config) as stub:
        stub.add_client_error(
            "select_aggregate_resource_config", "NoSuchConfigurationAggregatorException", "no org"
        )
        actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    # The approval stands; the failure is recorded and the deletion pass asks again later.
    kept = DeletionCheck.objects.get(pk=check)
    assert (kept.status, kept.claim) == ("approved", "")
    assert "NoSuchConfigurationAggregatorException" in kept.last_error
    assert kept.due_at > LATER


def test_with_one_account_unreadable_nothing_is_deleted_anywhere(world, monkeypatch, delete_calls):
    world.repository("web")
    world.repository("api")
    web, api = world.push("web", "v1"), world.push("api", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    real = cleanup_aws.list_active_task_definitions

    def denied(account, region):
        if account.account_id == DEV:
            raise cleanup_aws.CleanupAwsError(
                "AccessDenied: not authorized to perform ecs:ListTaskDefinitions",
                code="AccessDenied",
                account_id=DEV,
            )
        return real(account, region)

    monkeypatch.setattr(cleanup_aws, "list_active_task_definitions", denied)
    actions.do_run_due_checks(now=NOW)
    checks = list(DeletionCheck.objects.all())
    assert {check.status for check in checks} == {"failed"}
    assert all(f"account {DEV}: AccessDenied" in check.last_error for check in checks)
    assert {web, api} <= world.ecr_digests("web") | world.ecr_digests("api")
    # An approval from before the outage does not help either.
    DeletionCheck.objects.update(status="approved", approved_by="oscar")
    result = actions.do_delete_images([check.pk for check in checks], now=LATER)
    assert sorted(result.failed) == sorted(check.pk for check in checks)
    assert delete_calls == []
    assert not AuditEvent.objects.filter(action="image.deleted").exists()


def test_failed_checks_are_retried_with_back_off(world, monkeypatch):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)

    def denied(account, region):
        raise cleanup_aws.CleanupAwsError("Throttling", code="Throttling", retryable=True)

    monkeypatch.setattr(cleanup_aws, "list_image_functions", denied)
    actions.do_run_due_checks(now=NOW)
    first = check_of(digest)
    assert first.status == "failed" and first.due_at == NOW + timedelta(minutes=1)
    assert actions.do_run_due_checks(now=NOW + timedelta(seconds=30)).decided == {}
    actions.do_run_due_checks(now=NOW + timedelta(minutes=1))
    assert check_of(digest).due_at == NOW + timedelta(minutes=3)
    monkeypatch.undo()
    actions.do_run_due_checks(now=NOW + timedelta(minutes=3))
    assert check_of(digest).status == "awaiting_approval"


def test_it_refuses_to_delete_without_approval_where_approval_is_required(
    world, settings, delete_calls
):
    settings.CLEANUP_REQUIRE_APPROVAL = False
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    check = check_of(digest)
    assert check.status == "approved" and check.approved_by == ""
    settings.CLEANUP_REQUIRE_APPROVAL = True
    actions.do_delete_images([check.pk], now=LATER)
    assert digest in world.ecr_digests("web")
    assert check_of(digest).status == "awaiting_approval"
    assert delete_calls == []


def test_it_deletes_without_approval_where_the_repository_does_not_require_it(
    world, django_capture_on_commit_callbacks
):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    Repository.objects.filter(name="web").update(require_approval=False)
    actions.do_sweep(now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_run_due_checks(now=NOW)
    assert check_of(digest).status == "deleted"
    assert AuditEvent.objects.get(action="image.deleted").actor == "worker"


def test_it_keeps_an_image_last_used_within_the_grace_period(world, settings):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    settings.CLEANUP_GRACE_PERIOD = timedelta(hours=24)
    Image.objects.filter(digest=digest).update(last_used_at=LATER - timedelta(hours=1))
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    refreshed = DeletionCheck.objects.get(pk=check)
    assert refreshed.status == "scheduled"
    assert refreshed.due_at == LATER + timedelta(hours=23)


def test_dry_run_records_what_would_be_deleted_and_calls_nothing(world, settings, delete_calls):
    world.repository("web")
    digest = world.push("web", "v1")
    check = approve_everything()[0]
    settings.CLEANUP_DRY_RUN = True
    actions.do_delete_images([check], now=LATER)
    assert digest in world.ecr_digests("web")
    assert delete_calls == []
    refreshed = DeletionCheck.objects.get(pk=check)
    assert refreshed.would_delete and refreshed.status == "cancelled"
    assert AuditEvent.objects.get(action="image.would_delete").actor == "oscar"
    assert Image.objects.get(digest=digest).deleted_at is None


def test_250_approved_deletions_make_3_batch_delete_image_calls(world, delete_calls):
    world.repository("many")
    digests = [world.push("many") for _ in range(250)]
    ids = approve_everything()
    assert len(ids) == 250
    result = actions.do_delete_images(ids, now=LATER)
    assert len(result.deleted) == 250
    assert delete_calls == [100, 100, 50]
    assert not set(digests) & world.ecr_digests("many")


def test_per_image_failures_are_recorded_and_retried(world, monkeypatch):
    world.repository("web")
    ok, bad = world.push("web", "a"), world.push("web", "b")
    ids = approve_everything()

    def partly(account, region, repository, digests):
        return cleanup_aws.DeleteOutcome(
            deleted=[d for d in digests if d != bad],
            failures=[(bad, "ImageReferencedByManifestList", "still in an index")],
        )

    monkeypatch.setattr(cleanup_aws, "batch_delete_images", partly)
    result = actions.do_delete_images(ids, now=LATER)
    assert result.failed == [check_of(bad).pk]
    assert (
        check_of(bad).status == "failed"
        and "ImageReferencedByManifestList" in check_of(bad).last_error
    )
    assert check_of(ok).status == "deleted"


def test_two_workers_never_claim_the_same_check(world):
    world.repository("web")
    world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    _, first = actions.claim_due_checks(NOW)
    _, second = actions.claim_due_checks(NOW)
    assert len(first) == 1 and second == []


def test_a_check_deleted_twice_is_deleted_once(world, delete_calls):
    world.repository("web")
    world.push("web", "v1")
    ids = approve_everything()
    actions.do_delete_images(ids, now=LATER)
    actions.do_delete_images(ids, now=LATER)
    assert delete_calls == [1]
    assert AuditEvent.objects.filter(action="image.deleted").count() == 1
