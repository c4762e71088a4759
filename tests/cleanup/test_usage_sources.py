"""Every place an image can still run keeps it: every Lambda version, every ECR host form, every
region the account runs in, AWS Batch, App Runner, and anything ECR saw pulling it lately. And a
reference that names the registry but cannot be read fails the decision closed.

Each test runs the console's whole path on moto (sync, sweep, decide, approve, delete) and checks
that the referenced image is still in ECR while an unreferenced one beside it was deleted, so a
test cannot pass by deleting nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.stub import Stubber

from accounts import aws as accounts_aws
from accounts.models import AwsAccount
from cleanup import actions, usage
from cleanup.models import DeletionCheck, Image
from scenarios import clients, ecs
from scenarios.lambdas import image_function
from tests.cleanup.conftest import NOW, REGION, REGISTRY, uri

LATER = NOW + timedelta(minutes=5)


def clean_up(now=NOW) -> None:
    """What the worker does: sync, sweep, decide; then an operator approves all, and it deletes."""
    actions.do_sync_inventory(now=now)
    actions.do_sweep(now=now)
    actions.do_run_due_checks(now=now)
    ids = list(
        DeletionCheck.objects.filter(status="awaiting_approval").values_list("id", flat=True)
    )
    actions.do_approve_checks(ids, actor="oscar", now=now)
    actions.do_delete_images(ids, now=now + timedelta(minutes=5))


def usage_of(digest: str) -> list[str]:
    return [ref["where"] for ref in Image.objects.get(digest=digest).usage]


def test_it_keeps_the_image_of_an_older_version_an_alias_points_at(world, monkeypatch):
    # moto resolves a version's digest from its ECR only with this switch (and then only in the
    # function's own account): the function lives in the registry account, which is read too.
    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")
    world.repository("worker")
    unused = world.push("worker", "0.9")
    published = world.push("worker", "1.0")
    current = world.push("worker", "2.0")
    image_function(clients.for_account(world.registry), "worker", uri("worker", ":1.0"))
    client = accounts_aws.client(world.registry, REGION, "lambda")
    version = client.publish_version(FunctionName="worker")["Version"]
    client.create_alias(FunctionName="worker", Name="live", FunctionVersion=version)
    client.update_function_code(FunctionName="worker", ImageUri=uri("worker", ":2.0"))

    clean_up()

    assert world.ecr_digests("worker") == {published, current}
    assert unused not in world.ecr_digests("worker")
    assert f"Lambda function worker:{version}" in usage_of(published)


def test_it_keeps_images_named_through_fips_and_dual_stack_hosts(world):
    world.repository("web")
    unused = world.push("web", "v0")
    fips = world.push("web", "v1")
    dual_stack = world.push("web", "v2")
    world.register(world.prod, "fips", [f"{REGISTRY}.dkr.ecr-fips.{REGION}.amazonaws.com/web:v1"])
    world.register(world.dev, "ipv6", [f"{REGISTRY}.dkr-ecr.{REGION}.on.aws/web@{dual_stack}"])

    clean_up()

    assert world.ecr_digests("web") == {fips, dual_stack}
    assert unused not in world.ecr_digests("web")
    assert usage_of(fips) == ["task definition fips:1"]


def test_a_reference_to_the_registry_that_cannot_be_read_fails_the_check_closed(world):
    world.repository("web")
    unused = world.push("web", "v1")
    unreadable = f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/Web:v1"  # ECR names are lower case
    world.register(world.dev, "typo", [unreadable])
    actions.do_sync_inventory(now=NOW)
    actions.do_request_check(Image.objects.get(digest=unused), actor="oscar", now=NOW)

    clean_up()

    assert unused in world.ecr_digests("web")
    check = DeletionCheck.objects.get(image__digest=unused)
    assert check.status == "failed"
    assert unreadable in check.last_error
    assert "cannot be read" in check.last_error


def test_another_registry_is_not_a_reason_to_stop(world):
    world.repository("web")
    unused = world.push("web", "v1")
    world.register(world.dev, "hub", ["docker.io/library/nginx:1.27", "public.ecr.aws/x/y:1"])

    clean_up()

    assert unused not in world.ecr_digests("web")


def test_it_keeps_an_image_used_in_a_region_nobody_registered(world):
    world.repository("web")
    unused = world.push("web", "v0")
    far_away = world.push("web", "v1")
    AwsAccount.objects.filter(pk=world.prod.pk).update(usage_regions=[])  # every enabled region
    ecs.register_task_definition(
        accounts_aws.client(world.prod, "us-east-1", "ecs"), "edge", [uri("web", ":v1")]
    )

    clean_up()

    assert world.ecr_digests("web") == {far_away}
    assert unused not in world.ecr_digests("web")
    prod = AwsAccount.objects.get(pk=world.prod.pk)
    assert "us-east-1" in prod.discovered_regions and prod.regions == ["eu-west-1"]
    check = DeletionCheck.objects.get(image__digest=unused)
    assert check.evidence["scope"]["accounts"][prod.account_id].startswith(
        "usage read in every enabled region"
    )
    assert check.evidence["scope"]["accounts"][world.dev.account_id] == (
        "usage read in eu-west-1 only (narrowed by an operator)"
    )


def test_regions_that_cannot_be_discovered_fail_the_check_closed(world, monkeypatch):
    world.repository("web")
    unused = world.push("web", "v1")
    AwsAccount.objects.filter(pk=world.prod.pk).update(usage_regions=[])

    def refuse(account):
        raise accounts_aws.AwsError("AccessDenied: ec2:DescribeRegions", code="AccessDenied")

    monkeypatch.setattr(accounts_aws, "enabled_regions", refuse)
    clean_up()

    assert unused in world.ecr_digests("web")
    assert not DeletionCheck.objects.filter(image__digest=unused, status="deleted").exists()


def test_discovered_regions_are_remembered_for_a_day(world, monkeypatch):
    AwsAccount.objects.filter(pk=world.prod.pk).update(usage_regions=[])
    calls = []
    real = accounts_aws.enabled_regions
    monkeypatch.setattr(accounts_aws, "enabled_regions", lambda a: calls.append(1) or real(a))
    from accounts.actions import usage_regions

    prod = AwsAccount.objects.get(pk=world.prod.pk)
    first = usage_regions(prod, NOW)
    usage_regions(AwsAccount.objects.get(pk=world.prod.pk), NOW + timedelta(hours=23))
    usage_regions(AwsAccount.objects.get(pk=world.prod.pk), NOW + timedelta(hours=25))

    assert "us-east-1" in first and "eu-west-1" in first
    assert len(calls) == 2


@pytest.fixture
def pulls(world):
    """moto 5.2 records no pulls: add ``lastRecordedPullTime`` to the console's DescribeImages
    answers the way ECR would, for the digests a test names."""
    pulled: dict[str, object] = {}

    def add_pull_times(parsed, **kwargs):
        for detail in parsed.get("imageDetails", []):
            if detail["imageDigest"] in pulled:
                detail["lastRecordedPullTime"] = pulled[detail["imageDigest"]]

    ecr = accounts_aws.client(world.registry, REGION, "ecr")
    ecr.meta.events.register("after-call.ecr.DescribeImages", add_pull_times)
    yield pulled
    ecr.meta.events.unregister("after-call.ecr.DescribeImages", add_pull_times)


def test_it_keeps_an_image_pulled_recently_with_the_reason(world, pulls):
    world.repository("web")
    long_ago = world.push("web", "v1")
    recently = world.push("web", "v2")
    pulls[long_ago] = NOW - timedelta(days=30)
    pulls[recently] = NOW - timedelta(days=3)
    actions.do_sync_inventory(now=NOW)
    for digest in (long_ago, recently):
        actions.do_request_check(Image.objects.get(digest=digest), actor="oscar", now=NOW)

    clean_up()

    assert world.ecr_digests("web") == {recently}
    check = DeletionCheck.objects.get(image__digest=recently)
    assert check.status == "in_use"
    assert "CLEANUP_KEEP_PULLED_WITHIN" in check.decision_reason
    assert "within the last 14d" in check.decision_reason


def test_the_pull_guard_can_be_turned_off(world, pulls, settings):
    settings.CLEANUP_KEEP_PULLED_WITHIN = timedelta(0)
    world.repository("web")
    recently = world.push("web", "v1")
    pulls[recently] = NOW - timedelta(days=3)

    clean_up()

    assert recently not in world.ecr_digests("web")


def test_it_keeps_an_image_an_active_batch_job_definition_uses(world):
    world.repository("jobs")
    unused = world.push("jobs", "v0")
    batch_image = world.push("jobs", "nightly")
    accounts_aws.client(world.prod, REGION, "batch").register_job_definition(
        jobDefinitionName="nightly",
        type="container",
        containerProperties={
            "image": uri("jobs", ":nightly"),
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
            "command": ["run"],
        },
    )

    clean_up()

    assert world.ecr_digests("jobs") == {batch_image}
    assert unused not in world.ecr_digests("jobs")
    assert usage_of(batch_image) == ["Batch job definition nightly:1"]


@pytest.fixture
def app_runner(world, settings):
    """moto 5.2 has no App Runner: botocore's Stubber answers for every account's client."""
    settings.CLEANUP_SKIP_SOURCES = []
    stubbers = {}
    for account in (world.registry, world.prod, world.dev):
        stubber = Stubber(accounts_aws.client(account, REGION, "apprunner"))
        stubber.activate()
        stubbers[account.account_id] = stubber
    yield stubbers
    for stubber in stubbers.values():
        stubber.deactivate()


def answer_no_service(stubber) -> None:
    stubber.add_response("list_services", {"ServiceSummaryList": []}, {})


def test_it_keeps_an_image_an_app_runner_service_runs(world, app_runner):
    world.repository("site")
    unused = world.push("site", "v0")
    running = world.push("site", "v1")
    service_arn = f"arn:aws:apprunner:{REGION}:{world.prod.account_id}:service/site/0123"
    prod = app_runner[world.prod.account_id]
    prod.add_response(
        "list_services",
        {
            "ServiceSummaryList": [
                {"ServiceName": "site", "ServiceArn": service_arn, "Status": "RUNNING"}
            ]
        },
        {},
    )
    prod.add_response(
        "describe_service",
        {
            "Service": {
                "ServiceName": "site",
                "ServiceId": "0123" * 8,
                "ServiceArn": service_arn,
                "CreatedAt": NOW,
                "UpdatedAt": NOW,
                "AutoScalingConfigurationSummary": {},
                "Status": "RUNNING",
                "SourceConfiguration": {
                    "ImageRepository": {
                        "ImageIdentifier": uri("site", ":v1"),
                        "ImageRepositoryType": "ECR",
                    }
                },
                "InstanceConfiguration": {},
                "NetworkConfiguration": {},
            }
        },
        {"ServiceArn": service_arn},
    )
    answer_no_service(app_runner[world.registry.account_id])
    answer_no_service(app_runner[world.dev.account_id])
    actions.do_sync_inventory(now=NOW)

    actions.do_sweep(now=NOW)  # one snapshot: every stubbed answer is used once

    assert usage_of(running) == ["App Runner service site"]
    assert not DeletionCheck.objects.filter(image__digest=running).exists()
    assert DeletionCheck.objects.filter(image__digest=unused, status="scheduled").exists()
    for stubber in app_runner.values():
        stubber.assert_no_pending_responses()


def test_a_source_the_role_may_not_call_is_a_failure_not_an_empty_answer(world, app_runner):
    world.repository("site")
    unused = world.push("site", "v0")
    app_runner[world.prod.account_id].add_client_error(
        "list_services", service_error_code="AccessDeniedException", http_status_code=403
    )
    answer_no_service(app_runner[world.registry.account_id])
    answer_no_service(app_runner[world.dev.account_id])
    actions.do_sync_inventory(now=NOW)

    snapshot = usage.take_snapshot(NOW)

    assert not snapshot.complete
    assert any("apprunner_services 222222222222" in error for error in snapshot.errors)
    assert unused in world.ecr_digests("site")


def test_a_service_not_offered_in_a_region_is_not_asked_there(world, monkeypatch):
    AwsAccount.objects.filter(pk=world.prod.pk).update(usage_regions=["eu-west-1", "af-south-1"])
    monkeypatch.setattr(accounts_aws, "offers", lambda service, region: region != "af-south-1")

    snapshot = usage.take_snapshot(NOW, accounts=[AwsAccount.objects.get(pk=world.prod.pk)])

    assert snapshot.complete
    far = [answer for answer in snapshot.answers if answer.region == "af-south-1"]
    assert far and all(answer.note == "not offered in this region" for answer in far)


@pytest.mark.parametrize(
    "image, expected",
    [
        (f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com/web:v1", ("web", "v1", None)),
        (f"{REGISTRY}.dkr.ecr.cn-north-1.amazonaws.com.cn/team/web", ("team/web", "latest", None)),
        (
            f"{REGISTRY}.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a_b/c--d:1",
            ("a_b/c--d", "1", None),
        ),
        (f"{REGISTRY}.dkr-ecr.eu-west-1.on.aws/web@sha256:{'a' * 64}", ("web", None, "a" * 64)),
        (f"{REGISTRY}.DKR.ECR.EU-WEST-1.AMAZONAWS.COM/web:V1", ("web", "V1", None)),
        (f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com:443/web:v1", ("web", "v1", None)),
    ],
)
def test_it_parses_every_ecr_host_form(image, expected):
    ref = usage.parse_image(image)
    repository, tag, digest = expected
    assert ref is not None and ref.registry == REGISTRY
    assert (ref.repository, ref.tag, ref.digest) == (
        repository,
        tag,
        f"sha256:{digest}" if digest else None,
    )


@pytest.mark.parametrize(
    "image",
    [
        f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com/Web:v1",
        f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com.evil.example/web:v1",
        f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:short",
        f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com",
        f"{REGISTRY}.dkr.ecr.eu-west-1.amazonaws.com/web:{'x' * 301}",
    ],
)
def test_what_names_a_registry_but_does_not_parse_is_unreadable(image):
    assert usage.parse_image(image) is None
    assert usage.unreadable_accounts(image) == {REGISTRY}


def test_the_check_page_and_the_accounts_page_say_where_usage_was_read(world, viewer_client):
    world.repository("web")
    unused = world.push("web", "v1")
    clean_up()
    check = DeletionCheck.objects.get(image__digest=unused)

    page = viewer_client.get(f"/checks/{check.pk}/").content.decode()
    accounts = viewer_client.get("/accounts/").content.decode()

    assert "usage read in eu-west-1 only (narrowed by an operator)" in page
    assert "Not asked (CLEANUP_SKIP_SOURCES): apprunner_services" in page
    assert "usage read in eu-west-1 only (narrowed by an operator)" in accounts


def test_a_region_enabled_after_the_decision_is_read_before_deleting(world, monkeypatch):
    """Found by the property test's review: discovery is remembered for a day, but the deletion
    asks again, so a region enabled since the decision cannot hide a use."""
    world.repository("web")
    used_later = world.push("web", "v1")
    AwsAccount.objects.filter(pk=world.prod.pk).update(usage_regions=[])
    real = accounts_aws.enabled_regions
    monkeypatch.setattr(accounts_aws, "enabled_regions", lambda a: ["eu-west-1"])
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    check = DeletionCheck.objects.get(image__digest=used_later, status="awaiting_approval")
    actions.do_approve_checks([check.pk], actor="oscar", now=NOW)

    monkeypatch.setattr(accounts_aws, "enabled_regions", real)  # us-west-2 and others now
    ecs.register_task_definition(
        accounts_aws.client(world.prod, "us-west-2", "ecs"), "edge", [uri("web", ":v1")]
    )
    actions.do_delete_images([check.pk], now=NOW + timedelta(minutes=10))

    assert used_later in world.ecr_digests("web")
    check.refresh_from_db()
    assert check.status == "in_use"


def test_the_sweep_opens_no_check_in_a_registry_with_an_unreadable_reference(world):
    world.repository("web")
    world.push("web", "v1")
    world.register(world.dev, "typo", [f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/Web:v1"])
    actions.do_sync_inventory(now=NOW)

    actions.do_sweep(now=NOW)

    assert not DeletionCheck.objects.exists()


def test_an_organization_account_waiting_for_its_role_fails_the_check_closed(world):
    from accounts.models import OrganizationMember

    world.repository("web")
    unused = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)  # scheduled before the organization pass found a new account
    waiting = AwsAccount.objects.create(account_id="444444444444", name="new-team", enabled=False)
    member = OrganizationMember.objects.create(account=waiting, first_seen_at=NOW)

    clean_up(NOW + timedelta(days=2))

    assert unused in world.ecr_digests("web")  # its workloads are unknown: nothing is deleted
    check = DeletionCheck.objects.get(image__digest=unused)
    assert check.status not in ("awaiting_approval", "approved", "deleted")
    assert "444444444444" in str(check.evidence)

    member.state = OrganizationMember.State.ACTIVE  # the role verified (and the account reads)
    member.save()
    AwsAccount.objects.filter(pk=waiting.pk).delete()  # (this test's account has no role to read)
    clean_up(NOW + timedelta(days=4))
    assert unused not in world.ecr_digests("web")
