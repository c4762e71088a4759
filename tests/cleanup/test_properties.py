"""Random histories never delete an image in use, and never touch a repository that has not
opted in. The fake AWS checks both at the moment of every BatchDeleteImage call, from its own
reading of the world (not the console's)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanup import actions, usage
from cleanup.models import DeletionCheck, Image, Repository, TaskDefinitionImages, UsageSnapshot
from tests.cleanup.fake_aws import INDEX, FakeAws, FakeImage

REGISTRY, REGION = "111111111111", "eu-west-1"
WORKLOADS = ["222222222222", "333333333333"]
REPOS = ["web", "api/v2", "private"]  # "private" never carries the opt-in tag
TAGS = ["latest", "v1", "v2"]
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

account_ix = st.integers(0, len(WORKLOADS) - 1)
repo_ix = st.integers(0, len(REPOS) - 1)
image_ix = st.integers(0, 4)
operation = st.one_of(
    st.tuples(
        st.just("register"),
        account_ix,
        repo_ix,
        image_ix,
        st.sampled_from(["tag", "digest", "bare"]),
    ),
    st.tuples(st.just("deregister"), st.integers(0, 20)),
    st.tuples(st.just("move_tag"), repo_ix, st.sampled_from(TAGS), image_ix),
    st.tuples(st.just("update_service"), account_ix, st.integers(0, 20)),
    st.tuples(st.just("run_task"), account_ix, repo_ix, image_ix),
    st.tuples(st.just("stop_tasks"), account_ix),
    st.tuples(
        st.just("approve"),
    ),
    st.tuples(
        st.just("run_due"),
    ),
    st.tuples(
        st.just("delete_approved"),
    ),
    st.tuples(
        st.just("sweep"),
    ),
    st.tuples(st.just("advance"), st.integers(1, 120)),
    st.tuples(
        st.just("cycle"),
    ),
    st.tuples(
        st.just("cycle"),
    ),
)


def digest_of(repo: str, n: int) -> str:
    return "sha256:" + hashlib.sha256(f"{repo}-{n}".encode()).hexdigest()


def build_world() -> FakeAws:
    fake = FakeAws()
    for name in REPOS:
        repo = fake.repository(REGISTRY, REGION, name, opted_in=name != "private")
        for n in range(4):
            repo.images[digest_of(name, n)] = FakeImage(
                digest_of(name, n), [TAGS[n]] if n < 3 else [], START - timedelta(days=10 - n)
            )
        children = [digest_of(name, 3)]
        repo.images[digest_of(name, 4)] = FakeImage(
            digest_of(name, 4), ["multi"], START, media_type=INDEX, children=children
        )
    return fake


@pytest.fixture
def accounts(make_account, settings):
    settings.CLEANUP_GRACE_PERIOD = timedelta(minutes=0)
    settings.CLEANUP_REQUIRE_APPROVAL = True
    settings.CLEANUP_DRY_RUN = False
    registry = make_account(REGISTRY, "shared", is_registry=True)
    return [registry] + [make_account(a, f"w{a[0]}") for a in WORKLOADS]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(operation, min_size=3, max_size=30))
def test_random_histories_never_delete_an_image_in_use(accounts, monkeypatch, history):
    for model in (DeletionCheck, Image, Repository, TaskDefinitionImages, UsageSnapshot):
        model.objects.all().delete()
    usage.clear_caches()
    fake = build_world()
    deleted: list[str] = []

    def at_deletion(repo, digests):
        assert repo.tags.get("ecr-cleanup") == "enabled", (
            f"touched {repo.name} without the opt-in tag"
        )
        in_use = fake.referenced_digests(repo) & set(digests)
        assert not in_use, f"deleting {in_use} of {repo.name} while in use"
        deleted.extend(digests)

    fake.on_delete = at_deletion
    with monkeypatch.context() as patch:
        fake.install(patch)
        now = START
        actions.do_sync_inventory(now=now)
        registered: list[tuple[str, str]] = []
        for op in [("sweep",), *history, ("sweep",), ("cycle",)]:
            kind = op[0]
            if kind == "register":
                _, a, r, i, how = op
                repo = fake.repositories[(REGISTRY, REGION, REPOS[r])]
                ref = {
                    "tag": f":{TAGS[i % 3]}",
                    "digest": f"@{digest_of(REPOS[r], i)}",
                    "bare": "",
                }[how]
                registered.append(
                    (WORKLOADS[a], fake.register(WORKLOADS[a], REGION, "app", [repo.uri + ref]))
                )
            elif kind == "deregister" and registered:
                account_id, arn = registered[op[1] % len(registered)]
                images = fake.deregister(account_id, REGION, arn)
                actions.do_schedule_for_inactive_task_definitions(
                    account_id=account_id,
                    region=REGION,
                    definitions=[(arn, images)],
                    actor="webhook:eventbridge",
                    now=now,
                )
            elif kind == "move_tag":
                _, r, tag, i = op
                repo = fake.repositories[(REGISTRY, REGION, REPOS[r])]
                target = digest_of(REPOS[r], i)
                if target in repo.images:
                    for image in repo.images.values():
                        if tag in image.tags:
                            image.tags.remove(tag)
                    repo.images[target].tags.append(tag)
            elif kind == "update_service" and registered:
                account_id, arn = registered[op[2] % len(registered)]
                if account_id == WORKLOADS[op[1]]:
                    from cleanup.aws import ServiceInfo

                    region = fake.region(account_id, REGION)
                    region.services = [ServiceInfo("main", "svc", [arn])]
            elif kind == "run_task":
                _, a, r, i = op
                from cleanup.aws import TaskInfo

                repo = fake.repositories[(REGISTRY, REGION, REPOS[r])]
                digest = digest_of(REPOS[r], i)
                if digest in repo.images:
                    task = TaskInfo(
                        "main", f"task/{len(deleted)}-{i}", "app:1", [(repo.uri + ":v1", digest)]
                    )
                    fake.region(WORKLOADS[a], REGION).tasks.append(task)
            elif kind == "stop_tasks":
                fake.region(WORKLOADS[op[1]], REGION).tasks = []
            elif kind == "approve":
                ids = list(
                    DeletionCheck.objects.filter(status="awaiting_approval").values_list(
                        "id", flat=True
                    )
                )
                actions.do_approve_checks(ids, actor="oscar", now=now)
            elif kind == "run_due":
                actions.do_run_due_checks(now=now)
            elif kind == "delete_approved":
                ids = list(
                    DeletionCheck.objects.filter(status="approved").values_list("id", flat=True)
                )
                actions.do_delete_images(ids, now=now)
            elif kind == "sweep":
                actions.do_sync_inventory(now=now)
                actions.do_sweep(now=now)
            elif kind == "cycle":  # decide what is due, approve it all, delete
                actions.do_run_due_checks(now=now)
                ids = list(
                    DeletionCheck.objects.filter(status="awaiting_approval").values_list(
                        "id", flat=True
                    )
                )
                actions.do_approve_checks(ids, actor="oscar", now=now)
                actions.do_delete_images(ids, now=now)
            elif kind == "advance":
                now += timedelta(minutes=op[1])
        private = fake.repositories[(REGISTRY, REGION, "private")]
        assert len(private.images) == 5
        assert not DeletionCheck.objects.filter(image__repository__name="private").exists()
