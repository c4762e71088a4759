"""The cleanup at scale: the sweep and the decisions go one repository at a time and write as they
go, so memory follows the largest repository, not the inventory; results stay the same."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cleanup import actions, usage
from cleanup.actions import decide, inventory, sweep
from cleanup.models import DeletionCheck, Image
from scenarios.fake_aws import FakeAws, FakeImage
from tests.cleanup.conftest import NOW

REGISTRY, WORKLOAD, REGION = "111111111111", "222222222222", "eu-west-1"
REPOSITORIES = ["api", "web", "jobs", "batch"]


@pytest.fixture
def fake(make_account, monkeypatch, settings):
    """Four repositories of six images each; the workload runs v4 and v5 of every one."""
    settings.CLEANUP_GRACE_PERIOD = timedelta(0)
    settings.CLEANUP_REQUIRE_APPROVAL = True
    settings.CLEANUP_SKIP_SOURCES = []
    fake = FakeAws().install(monkeypatch)
    make_account(REGISTRY, "shared", is_registry=True, usage_regions=[])
    make_account(WORKLOAD, "prod", usage_regions=[])
    for name in REPOSITORIES:
        repo = fake.repository(REGISTRY, REGION, name)
        for n in range(6):
            digest = "sha256:" + f"{name}{n}".encode().hex().ljust(64, "0")
            repo.images[digest] = FakeImage(digest, [f"v{n}"], NOW - timedelta(days=10 - n))
        for n in (4, 5):
            fake.register(WORKLOAD, REGION, f"{name}-{n}", [f"{repo.uri}:v{n}"])
    usage.clear_caches(database=True)
    actions.do_sync_inventory(now=NOW)
    return fake


def unused_digests(fake: FakeAws) -> set[str]:
    return {
        image.digest
        for repo in fake.repositories.values()
        for image in repo.images.values()
        if image.digest not in fake.referenced_digests(repo)
    }


def test_a_sweep_written_in_small_batches_schedules_every_unused_image_once(fake, monkeypatch):
    monkeypatch.setattr(sweep, "WRITE_BATCH", 3)  # a write after almost every repository

    result = actions.do_sweep(now=NOW)

    scheduled = set(
        DeletionCheck.objects.filter(status="scheduled").values_list("image__digest", flat=True)
    )
    assert scheduled == unused_digests(fake) and len(scheduled) == 16
    assert DeletionCheck.objects.count() == 16
    assert result.in_use == 8
    assert Image.objects.filter(last_used_at=NOW).count() == 8
    listed = list(result.scheduled)  # ids kept, rows loaded when listed (the CLI prints them)
    assert len(result.scheduled) == 16
    assert {image.digest for image in listed} == scheduled
    assert {image.repository.name for image in listed} == set(REPOSITORIES)


def test_a_dry_run_sweep_writes_nothing_but_lists_what_it_would_schedule(fake, monkeypatch):
    monkeypatch.setattr(sweep, "WRITE_BATCH", 1)

    result = actions.do_sweep(now=NOW, dry_run=True)

    assert not DeletionCheck.objects.exists()
    assert not Image.objects.filter(last_used_at__isnull=False).exists()
    assert {image.digest for image in result.scheduled} == unused_digests(fake)


def test_a_decision_batch_reads_each_repository_once_and_holds_few_at_a_time(fake, monkeypatch):
    actions.do_sweep(now=NOW)
    monkeypatch.setattr(decide, "DECIDE_CHUNK", 3)  # chunks that cut through repositories
    held: list[int] = []
    real_read = inventory.RepositoryStates.read

    def read(self, repositories):
        errors = real_read(self, repositories)
        held.append(len(self.states))
        return errors

    monkeypatch.setattr(inventory.RepositoryStates, "read", read)
    fake.calls.clear()

    result = actions.do_run_due_checks(now=NOW)

    assert result.decided == {"awaiting_approval": 16}
    assert fake.calls["DescribeImages"] == fake.calls["ListTagsForResource"] == 4
    assert max(held) <= 2  # the repository a chunk ends in, and the next one
    decided = set(
        DeletionCheck.objects.filter(status="awaiting_approval").values_list(
            "image__digest", flat=True
        )
    )
    assert decided == unused_digests(fake)


def test_a_repository_that_changed_since_the_sweep_is_judged_as_ecr_says_now(fake, monkeypatch):
    actions.do_sweep(now=NOW)
    monkeypatch.setattr(decide, "DECIDE_CHUNK", 2)
    web = fake.repositories[(REGISTRY, REGION, "web")]
    moved = next(image for image in web.images.values() if image.tags == ["v0"])
    for image in web.images.values():  # v4, which the workload runs, now names the old image
        if "v4" in image.tags:
            image.tags = []
    moved.tags = ["v0", "v4"]

    actions.do_run_due_checks(now=NOW)

    check = DeletionCheck.objects.get(image__digest=moved.digest)
    assert check.status == "in_use"
    assert fake.calls["DescribeImages"] == 4 + 4  # the sync, then once per repository


def test_references_share_one_repository_key_and_one_tag_string(make_account):
    account = make_account(WORKLOAD, "prod")
    uri = f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/web"
    first = usage.reference("s", account, REGION, "here", "".join([uri, ":v1"]))
    second = usage.reference("s", account, REGION, "there", "".join([uri, ":", "v1"]))

    assert first.repository == (REGISTRY, REGION, "web")
    assert first.repository is second.repository
    assert first.tag is second.tag
    assert not hasattr(first, "__dict__")  # slots: a snapshot holds hundreds of thousands
