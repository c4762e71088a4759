"""Random histories never delete an image in use, and never touch a repository that has not
opted in. The fake AWS checks the safety rules at the moment of every BatchDeleteImage call, from
its own reading of the world (not the console's): the repository carries the opt-in tag, no
workload references a deleted digest (ECS task definitions, services and running tasks, every
Lambda version, Batch job definitions, App Runner services; in every host form and every enabled
region), no workload names the registry in a reference nobody can read, and ECR recorded no pull
of a deleted digest within ``CLEANUP_KEEP_PULLED_WITHIN``.

Safety alone is proved by a console that never deletes, so each history ends calmly (outages
over, a day later) and then everything unused must go: the histories do delete."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts.models import AwsAccount
from cleanup import actions, usage
from cleanup.aws import CleanupAwsError, ServiceInfo, TaskInfo
from cleanup.models import DeletionCheck, Image, Repository, UsageSnapshot
from scenarios.ecr import INDEX
from scenarios.fake_aws import FakeAws, FakeImage, FakeRepository, read_reference

REGISTRY, REGION = "111111111111", "eu-west-1"
WORKLOADS = ["222222222222", "333333333333"]
# Every account is registered in eu-west-1 only; us-east-1 is enabled in the workload accounts
# and only region discovery (DescribeRegions) finds what runs there.
WORKLOAD_REGIONS = [REGION, "us-east-1"]
REPOS = ["web", "api/v2", "private"]  # "private" never carries the opt-in tag
TAGS = ["latest", "v1", "v2"]
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PULL_WINDOW = timedelta(hours=3)
OUTAGES = [
    "DescribeRegions",
    "ListTaskDefinitions",
    "ListTasks",
    "ListFunctions",
    "GetFunction",
    "DescribeJobDefinitions",
    "apprunner:ListServices",
    "DescribeImages",
]
MAX_EXAMPLES = 250
STATS: Counter[str] = Counter()

account_ix = st.integers(0, len(WORKLOADS) - 1)
region_ix = st.integers(0, len(WORKLOAD_REGIONS) - 1)
repo_ix = st.integers(0, len(REPOS) - 1)
image_ix = st.integers(0, 4)
# How a workload writes a reference: host form, tag or digest, and now and then a string that
# names the registry account in its host but is no valid reference (it must block deletions).
HOSTS = ["standard", "standard", "fips", "dualstack", "dualstack_fips", "upper_host"]
SUFFIXES = ["tag", "digest", "bare", "tag_digest"]
BROKEN = ["evil_host", "uppercase_repo", "bad_digest", "no_path"]
valid_reference = st.tuples(st.sampled_from(HOSTS), st.sampled_from(SUFFIXES), st.none())
reference = st.tuples(
    st.sampled_from(HOSTS),
    st.sampled_from(SUFFIXES),
    st.sampled_from([None] * 14 + BROKEN),
)
image = st.tuples(repo_ix, image_ix)
operation = st.one_of(
    st.tuples(st.just("register"), account_ix, region_ix, image, reference),
    st.tuples(st.just("deregister"), st.integers(0, 20)),
    st.tuples(st.just("move_tag"), repo_ix, st.sampled_from(TAGS), image_ix),
    st.tuples(st.just("update_service"), account_ix, st.integers(0, 20)),
    st.tuples(st.just("run_task"), account_ix, region_ix, image, reference),
    st.tuples(st.just("stop_tasks"), account_ix),
    # Deploys publish a version now and then (update-function-code --publish) and move $LATEST
    # on; a release publishes one image and moves $LATEST on to another at once. A published
    # version keeps the image it was published with.
    st.tuples(
        st.just("lambda_deploy"), account_ix, region_ix, image, valid_reference, st.booleans()
    ),
    st.tuples(st.just("lambda_release"), account_ix, region_ix, image, image, valid_reference),
    # CI: push a new image under the same tag, deploy that URI, publish. Each version pins the
    # digest the tag had then; the URI alone names only the newest.
    st.tuples(
        st.just("lambda_ci_release"),
        account_ix,
        region_ix,
        repo_ix,
        st.sampled_from(TAGS),
        st.sampled_from(HOSTS),
    ),
    st.tuples(st.just("push"), repo_ix, st.sampled_from(TAGS)),
    st.tuples(st.just("lambda_delete"), account_ix, region_ix, st.integers(0, 3)),
    st.tuples(st.just("batch_register"), account_ix, region_ix, image, reference),
    st.tuples(st.just("batch_deregister"), st.integers(0, 20)),
    st.tuples(
        st.just("apprunner_deploy"), account_ix, region_ix, st.integers(0, 1), image, reference
    ),
    st.tuples(st.just("apprunner_delete"), account_ix, region_ix, st.integers(0, 1)),
    st.tuples(st.just("pull"), image, st.integers(0, 240)),  # the window is 180 minutes
    st.tuples(st.just("pull"), image, st.integers(0, 240)),
    st.tuples(st.just("toggle_opt_in"), st.integers(0, 1)),
    st.tuples(st.just("outage"), st.sampled_from(OUTAGES)),
    st.tuples(st.just("restore")),
    st.tuples(st.just("approve")),
    st.tuples(st.just("run_due")),
    st.tuples(st.just("delete_approved")),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("advance"), st.integers(1, 120)),
    st.tuples(st.just("cycle")),
    st.tuples(st.just("cycle")),
    st.tuples(st.just("cycle")),
)


def digest_of(repo: str, n: int) -> str:
    return "sha256:" + hashlib.sha256(f"{repo}-{n}".encode()).hexdigest()


def written(repo: FakeRepository, n: int, how: tuple[str, str, str | None]) -> str:
    """The image string a workload writes for image ``n`` of ``repo``."""
    host, suffix, broken = how
    base = repo.uris()["standard" if host == "upper_host" else host]
    registry, _, name = base.partition("/")
    if host == "upper_host":  # host names are case-insensitive
        registry = registry.upper()
    tag, digest = f":{TAGS[n % 3]}", f"@{digest_of(repo.name, n)}"
    ending = {"tag": tag, "digest": digest, "bare": "", "tag_digest": tag + digest}[suffix]
    if broken == "evil_host":
        return f"{registry}.evil/{name}{ending}"
    if broken == "uppercase_repo":
        return f"{registry}/{name.upper()}{ending}"
    if broken == "bad_digest":
        return f"{registry}/{name}@sha256:{n}"
    if broken == "no_path":
        return registry
    return f"{registry}/{name}{ending}"


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
    fake.enable_regions(REGISTRY, [REGION])
    for account_id in WORKLOADS:
        fake.enable_regions(account_id, WORKLOAD_REGIONS)
    return fake


class History:
    """Plays one history against the console and the fake, and checks every deletion."""

    def __init__(self, fake: FakeAws) -> None:
        self.fake = fake
        self.now = START
        self.task_definitions: list[tuple[str, str, str]] = []  # account, region, ARN
        self.job_definitions: list[tuple[str, str, str]] = []  # account, region, name:revision
        self.deleted: list[str] = []
        self.inbox: list[tuple[str, str, str, list[str]]] = []
        self.pushed = 0
        self.pushed_to: dict[str, set[str]] = {name: set() for name in REPOS}
        self.deleted_during_history = 0
        self.situations: set[str] = set()  # what the world held at some deletion
        fake.on_delete = self.at_deletion

    def repo(self, r: int) -> FakeRepository:
        return self.fake.repositories[(REGISTRY, REGION, REPOS[r])]

    def at_deletion(self, repo: FakeRepository, digests: list[str]) -> None:
        fake = self.fake
        assert repo.tags.get("ecr-cleanup") == "enabled", (
            f"touched {repo.name} without the opt-in tag"
        )
        in_use = fake.referenced_digests(repo) & set(digests)
        assert not in_use, f"deleting {in_use} of {repo.name} while in use"
        assert not fake.registry_unreadable(repo), (
            f"deleting {digests} of {repo.name} while a workload names the registry in a "
            "reference the console cannot read"
        )
        pulled = fake.recently_pulled(repo, self.now, PULL_WINDOW) & set(digests)
        assert not pulled, f"deleting {pulled} of {repo.name}, pulled within {PULL_WINDOW}"
        self.deleted.extend(digests)
        self.situations |= situations(fake, repo)
        if fake.recently_pulled(repo, self.now, PULL_WINDOW):
            self.situations.add("an image pulled within the window")

    def play(self, op: tuple) -> None:
        getattr(self, op[0])(*op[1:])

    # What happens in the workload accounts and the registry -------------------------------------

    def register(self, a, g, image, how) -> None:
        r, n = image
        account_id, region = WORKLOADS[a], WORKLOAD_REGIONS[g]
        arn = self.fake.register(account_id, region, "app", [written(self.repo(r), n, how)])
        self.task_definitions.append((account_id, region, arn))

    def deregister(self, n) -> None:
        if not self.task_definitions:
            return
        account_id, region, arn = self.task_definitions[n % len(self.task_definitions)]
        images = self.fake.deregister(account_id, region, arn)
        self.inbox.append((account_id, region, arn, images))
        self.process_inbox()

    def process_inbox(self) -> None:
        """The webhook inbox: an event whose handler failed (ECR did not answer) is tried again
        later, as ``webhooks.actions`` does."""
        waiting, self.inbox = self.inbox, []
        for account_id, region, arn, images in waiting:
            try:
                actions.do_schedule_for_inactive_task_definitions(
                    account_id=account_id,
                    region=region,
                    definitions=[(arn, images)],
                    actor="webhook:eventbridge",
                    now=self.now,
                )
            except CleanupAwsError:
                self.inbox.append((account_id, region, arn, images))

    def push(self, r, tag) -> str:
        """A new image under ``tag`` (a mutable tag moves on push)."""
        repo, self.pushed = self.repo(r), self.pushed + 1
        digest = digest_of(REPOS[r], 100 + self.pushed)
        for candidate in repo.images.values():
            if tag in candidate.tags:
                candidate.tags.remove(tag)
        repo.images[digest] = FakeImage(digest, [tag], self.now)
        self.pushed_to[repo.name].add(digest)
        return digest

    def move_tag(self, r, tag, n) -> None:
        repo = self.repo(r)
        target = digest_of(REPOS[r], n)
        if target in repo.images:
            for candidate in repo.images.values():
                if tag in candidate.tags:
                    candidate.tags.remove(tag)
            repo.images[target].tags.append(tag)

    def update_service(self, a, n) -> None:
        if not self.task_definitions:
            return
        account_id, region, arn = self.task_definitions[n % len(self.task_definitions)]
        if account_id == WORKLOADS[a]:
            self.fake.region(account_id, region).services = [ServiceInfo("main", "svc", [arn])]

    def run_task(self, a, g, image, how) -> None:
        r, n = image
        repo, digest = self.repo(r), digest_of(REPOS[r], n)
        if digest in repo.images:  # ECS pins the digest the task started with
            place = self.fake.region(WORKLOADS[a], WORKLOAD_REGIONS[g])
            task = TaskInfo(
                "main", f"task/{len(place.tasks)}", "app:1", [(written(repo, n, how), digest)]
            )
            place.tasks.append(task)

    def stop_tasks(self, a) -> None:
        for region in WORKLOAD_REGIONS:
            self.fake.region(WORKLOADS[a], region).tasks = []

    def lambda_deploy(self, a, g, image, how, publish) -> None:
        r, n = image
        account_id, region = WORKLOADS[a], WORKLOAD_REGIONS[g]
        deployed = self.fake.deploy_function(
            account_id, region, "fn", written(self.repo(r), n, how)
        )
        if deployed and publish:
            self.fake.publish_version(account_id, region, "fn")

    def lambda_release(self, a, g, published, latest, how) -> None:
        self.lambda_deploy(a, g, published, how, True)
        self.lambda_deploy(a, g, latest, how, False)

    def lambda_ci_release(self, a, g, r, tag, host) -> None:
        self.push(r, tag)
        self.lambda_deploy(a, g, (r, TAGS.index(tag)), (host, "tag", None), True)

    def lambda_delete(self, a, g, version) -> None:
        """Version 0: the whole function (its version numbers are never given again)."""
        self.fake.delete_function(
            WORKLOADS[a], WORKLOAD_REGIONS[g], "fn", str(version) if version else None
        )

    def batch_register(self, a, g, image, how) -> None:
        r, n = image
        account_id, region = WORKLOADS[a], WORKLOAD_REGIONS[g]
        name = self.fake.register_job_definition(
            account_id, region, "job", [written(self.repo(r), n, how)]
        )
        self.job_definitions.append((account_id, region, name))

    def batch_deregister(self, n) -> None:
        if self.job_definitions:
            self.fake.deregister_job_definition(
                *self.job_definitions[n % len(self.job_definitions)]
            )

    def apprunner_deploy(self, a, g, s, image, how) -> None:
        r, n = image
        self.fake.deploy_apprunner_service(
            WORKLOADS[a], WORKLOAD_REGIONS[g], f"svc{s}", written(self.repo(r), n, how)
        )

    def apprunner_delete(self, a, g, s) -> None:
        self.fake.delete_apprunner_service(WORKLOADS[a], WORKLOAD_REGIONS[g], f"svc{s}")

    def pull(self, image, minutes_ago) -> None:
        r, n = image
        found = self.repo(r).images.get(digest_of(REPOS[r], n))
        if found is not None:
            found.last_pulled_at = self.now - timedelta(minutes=minutes_ago)

    def toggle_opt_in(self, r) -> None:  # someone edits the tag in AWS, not in the console
        tags = self.repo(r).tags
        if tags.pop("ecr-cleanup", None) is None:
            tags["ecr-cleanup"] = "enabled"

    def outage(self, operation) -> None:
        self.fake.failing.add(operation)

    def restore(self) -> None:
        self.fake.failing.clear()
        self.process_inbox()

    def advance(self, minutes) -> None:
        self.now += timedelta(minutes=minutes)

    # What the console does -----------------------------------------------------------------------

    def approve(self) -> None:
        actions.do_approve_checks(awaiting(), actor="oscar", now=self.now)

    def run_due(self) -> None:
        actions.do_run_due_checks(now=self.now)

    def delete_approved(self) -> None:
        ids = list(DeletionCheck.objects.filter(status="approved").values_list("id", flat=True))
        actions.do_delete_images(ids, now=self.now)

    def sweep(self) -> None:
        actions.do_sync_inventory(now=self.now)
        actions.do_sweep(now=self.now)

    def cycle(self) -> None:  # decide what is due, approve it all, delete
        actions.do_run_due_checks(now=self.now)
        ids = awaiting()
        actions.do_approve_checks(ids, actor="oscar", now=self.now)
        actions.do_delete_images(ids, now=self.now)


def situations(fake: FakeAws, repo: FakeRepository) -> set[str]:
    """The risky things the world holds while an image of ``repo`` is deleted: the test proves
    little unless deletions happen next to each of them."""
    found = set()
    key = (repo.account_id, repo.region, repo.name)
    for (_, region), place in fake.regions.items():
        for function in place.functions.values():
            for version in function.published:
                reference = read_reference(version.image_uri)
                if (
                    reference
                    and (reference.account_id, reference.region, reference.repository) == key
                    and version.digest != function.latest.digest
                ):
                    found.add("a Lambda version keeps an image $LATEST moved away from")
        if region != REGION and any(
            (place.task_definitions, place.tasks, place.functions, place.job_definitions)
        ):
            found.add(f"workloads in {region}, found by region discovery")
        if any(d.status == "ACTIVE" for d in place.job_definitions):
            found.add("an ACTIVE Batch job definition")
        if any(s.status != "DELETED" for s in place.apprunner_services):
            found.add("an App Runner service")
    for image, _ in fake.workload_images():
        reference = read_reference(image)
        standard_host = ".dkr.ecr." in image.partition("/")[0]
        if reference and reference.account_id == repo.account_id and not standard_host:
            found.add("a FIPS or dual-stack reference")
    return found


def awaiting() -> list[int]:
    return list(
        DeletionCheck.objects.filter(status="awaiting_approval").values_list("id", flat=True)
    )


@pytest.fixture
def accounts(make_account, settings):
    settings.CLEANUP_GRACE_PERIOD = timedelta(minutes=0)
    settings.CLEANUP_REQUIRE_APPROVAL = True
    settings.CLEANUP_DRY_RUN = False
    settings.CLEANUP_KEEP_PULLED_WITHIN = PULL_WINDOW
    settings.CLEANUP_SKIP_SOURCES = []  # App Runner too: the fake answers for it
    registry = make_account(REGISTRY, "shared", is_registry=True, usage_regions=[])
    return [registry] + [make_account(a, f"w{a[0]}", usage_regions=[]) for a in WORKLOADS]


def test_random_histories_never_delete_an_image_in_use(accounts, monkeypatch):
    STATS.clear()

    # Derandomized: the same histories at every run, so the coverage thresholds below hold on
    # every machine (drawn at random, "a pull within the window" came up 0 to 40 times).
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(history=st.lists(operation, min_size=8, max_size=50))
    def run(history):
        for model in (DeletionCheck, Image, Repository, UsageSnapshot):
            model.objects.all().delete()
        usage.clear_caches(database=True)
        AwsAccount.objects.update(discovered_regions=[], regions_discovered_at=None)
        fake = build_world()
        played = History(fake)
        with monkeypatch.context() as patch:
            fake.install(patch)
            actions.do_sync_inventory(now=played.now)
            for op in [("sweep",), *history]:
                played.play(op)
            played.deleted_during_history = len(played.deleted)
            # A calm end: outages over, a day later (every back-off and pull window has passed).
            played.restore()
            played.advance(24 * 60)
            for _ in range(3):
                played.sweep()
                played.cycle()
                played.delete_approved()
        for r, name in enumerate(REPOS):
            repo = played.repo(r)
            if repo.tags.get("ecr-cleanup") != "enabled" or fake.registry_unreadable(repo):
                continue
            left = set(repo.images)
            must_stay = fake.referenced_digests(repo) & left
            assert left == must_stay, f"{name}: unused {sorted(left - must_stay)} still there"
        private = played.repo(REPOS.index("private"))
        assert (
            set(private.images)
            == {digest_of("private", n) for n in range(5)} | played.pushed_to["private"]
        )
        assert not DeletionCheck.objects.filter(image__repository__name="private").exists()
        for situation in played.situations:
            STATS[situation] += 1
        STATS["examples"] += 1
        STATS["deleted"] += len(played.deleted)
        if played.deleted_during_history:
            STATS["deleted during the history"] += 1
        event(f"deleted during the history: {played.deleted_during_history > 0}")

    run()
    print(dict(STATS))
    # The interesting deletions happen in the middle of a history, with workloads about.
    assert STATS["deleted during the history"] >= STATS["examples"] // 4, dict(STATS)
    for situation in [
        "a Lambda version keeps an image $LATEST moved away from",
        f"workloads in {WORKLOAD_REGIONS[1]}, found by region discovery",
        "an ACTIVE Batch job definition",
        "an App Runner service",
        "a FIPS or dual-stack reference",
        "an image pulled within the window",
    ]:
        assert STATS[situation] >= 3, f"too few deletions with {situation}: {dict(STATS)}"
