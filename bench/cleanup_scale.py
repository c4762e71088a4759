"""Scale benchmark of the ECR cleanup.

Builds a large inventory behind an in-process fake of every AWS call the console makes
(10 workload accounts x 2 regions, 20,000 ACTIVE task definition revisions, Lambda functions with
5 published versions each, Batch job definitions, App Runner services, 200 repositories with
50,000 images), then runs a sweep and a batch of 10,000 due checks twice: cold (nothing cached
anywhere, regions not discovered yet) and warm. Every account is registered in eu-west-1 only and
reads usage in every region enabled in it (``usage_regions`` empty): the fake answers
``DescribeRegions`` with eu-west-1 and us-east-1.

Prints wall time, peak memory and AWS calls by operation for each run next to the lower bound:
the list and describe pages no implementation can avoid, per account and region and per snapshot
(ListTaskDefinitions pages, one ListClusters, ListServices/DescribeServices, ListTasks/
DescribeTasks, ListFunctions pages with every version, DescribeJobDefinitions pages, App Runner
ListServices pages and one DescribeService per live service, whose image ListServices does not
give), one DescribeRegions per account whose discovery is missing or a day old, and the opt-in
tag and one DescribeImages page per repository of the batch, read again at decision time.
DescribeTaskDefinition and GetFunction are not in the bound: revisions and published versions
never change, so a warm run must make none.

At ``--size 10x``: 50 workload accounts (100 account-regions), 200,000 revisions, 2,000
repositories, 500,000 images and a batch of 100,000 checks; the targets are then a peak RSS of the
whole process under 1 GB, the warm run within 1.2 x its lower bound, and 10,000 checks decided a
minute. The fake's images and revisions are generated when asked (``cleanup_world``), so the
memory printed once the world is built is the fixture's share and the rest is the console's.

    .venv/bin/python bench/cleanup_scale.py [--size 1x|10x] [--accounts 10] [--checks 10000]

Uses a throwaway SQLite database in a temporary directory.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = tempfile.mkdtemp(prefix="cleanup-bench-")
# The console's settings, with the tasks that actions enqueue run at once in this process.
BENCH_SETTINGS = """
from console.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
"""
Path(WORKDIR, "cleanup_bench_settings.py").write_text(BENCH_SETTINGS)
sys.path[:0] = [str(ROOT), WORKDIR]
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cleanup_bench_settings")
os.environ.setdefault("SECRET_KEY", "cleanup-bench-only-" + "0" * 40)
os.environ["CLEANUP_GRACE_PERIOD"] = "0s"
# Every AWS call goes to the fake; anything that would not must not reach a real account.
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="eu-west-1",
    AWS_DEFAULT_REGION="eu-west-1",
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

# The inventory at 1x and 10x: workload accounts (each read in 2 regions), repositories, images,
# ACTIVE task definition revisions, and the checks decided in one batch.
SIZES = {
    "1x": {
        "accounts": 10,
        "repositories": 200,
        "images": 50_000,
        "task_definitions": 20_000,
        "checks": 10_000,
    },
    "10x": {
        "accounts": 50,
        "repositories": 2_000,
        "images": 500_000,
        "task_definitions": 200_000,
        "checks": 100_000,
    },
}
MEMORY_LIMIT_MB = 1024  # peak RSS of the whole process, the fake world included
REGISTRY = "100000000000"
REGIONS = ["eu-west-1", "us-east-1"]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FUNCTIONS = 20  # image functions per workload account and region
VERSIONS = 5  # published versions of each, besides $LATEST
JOB_DEFINITIONS = 40  # Batch job definition revisions per account and region, a quarter INACTIVE
APPRUNNER_SERVICES = 5  # App Runner services per account and region, one DELETED


def build(
    fake, accounts: int, repositories: int, images_per_repo: int, task_definitions: int
) -> dict:
    """The inventory: which images exist, and which workloads use some of them. Images and task
    definition revisions are generated when the fake is asked (``cleanup_world``)."""
    from cleanup_world import digest

    from cleanup.aws import ServiceInfo, TaskInfo

    rng = random.Random(4)
    repos = [
        fake.generated_repository(
            REGISTRY, REGIONS[0], f"team{r % 20}/service-{r}", r, images_per_repo, NOW
        )
        for r in range(repositories)
    ]
    newer = [i for i in range(images_per_repo // 2, images_per_repo) if i % 3]  # tagged, in use
    workload_ids = [f"2{n:011d}" for n in range(accounts)]
    per_region = task_definitions // (accounts * len(REGIONS))
    for account_id in [REGISTRY, *workload_ids]:
        fake.enable_regions(account_id, REGIONS)
    for account_id in workload_ids:
        for region in REGIONS:
            revisions = fake.generated_task_definitions(account_id, region, repos)
            for _ in range(per_region):
                r = rng.randrange(len(repos))
                revisions.add(r, rng.randrange(images_per_repo // 2, images_per_repo))
            place = fake.region(account_id, region)
            place.services = [
                ServiceInfo("main", f"svc-{s}", [revisions.arn(s * 7 % per_region)])
                for s in range(50)
            ]
            place.tasks = [
                TaskInfo(
                    "main",
                    f"task/{k}",
                    revisions.arn(k),
                    [(repos[k % len(repos)].uri + ":v1", digest(k % len(repos), 1))],
                )
                for k in range(100)
            ]
            for f in range(FUNCTIONS):
                # Each release deploys a newer tag and publishes it: 5 versions pinned to 5
                # digests, then $LATEST moves on to a sixth.
                for release in range(VERSIONS + 1):
                    i = newer[(f + release) % len(newer)]
                    fake.deploy_function(
                        account_id, region, f"fn-{f}", f"{repos[f].uri}:v{i}", digest(f, i)
                    )
                    if release < VERSIONS:
                        fake.publish_version(account_id, region, f"fn-{f}")
            for j in range(JOB_DEFINITIONS):
                repo = repos[rng.randrange(len(repos))]
                image = f"{repo.uri}:v{newer[rng.randrange(len(newer))]}"
                name = fake.register_job_definition(account_id, region, f"job-{j % 10}", [image])
                if j % 4 == 0:
                    fake.deregister_job_definition(account_id, region, name)
            for s in range(APPRUNNER_SERVICES):
                repo = repos[rng.randrange(len(repos))]
                fake.deploy_apprunner_service(
                    account_id, region, f"web-{s}", f"{repo.uri}:v{newer[s % len(newer)]}"
                )
            fake.delete_apprunner_service(account_id, region, "web-0")
    return {"workloads": workload_ids, "per_region": per_region}


def lower_bound_snapshot(fake, accounts: list[str]) -> Counter:
    """The calls one usage snapshot cannot avoid, in every enabled region of every account (the
    registry account is enabled too and is asked like any other; it runs nothing here)."""
    bound: Counter = Counter()
    for account_id in accounts:
        for region in fake.enabled[account_id]:
            place = fake.region(account_id, region)
            active = sum(1 for status, _ in place.task_definitions.values() if status == "ACTIVE")
            bound["ListTaskDefinitions"] += max(1, math.ceil(active / 100))
            bound["ListClusters"] += 1
            bound["ListServices"] += max(1, math.ceil(len(place.services) / 100))
            bound["DescribeServices"] += math.ceil(len(place.services) / 10)
            bound["ListTasks"] += max(1, math.ceil(len(place.tasks) / 100))
            bound["DescribeTasks"] += math.ceil(len(place.tasks) / 100)
            versions = sum(len(function.versions) for function in place.functions.values())
            bound["ListFunctions"] += max(1, math.ceil(versions / 50))
            jobs = sum(1 for d in place.job_definitions if d.status == "ACTIVE")
            bound["DescribeJobDefinitions"] += max(1, math.ceil(jobs / 100))
            services = place.apprunner_services
            bound["apprunner:ListServices"] += max(1, math.ceil(len(services) / 20))
            bound["apprunner:DescribeService"] += sum(1 for s in services if s.status != "DELETED")
    return bound


def undiscovered(now: datetime) -> int:
    """Accounts whose enabled regions must be asked again (DescribeRegions, once a day)."""
    from accounts.actions import REGION_DISCOVERY_MAX_AGE
    from accounts.models import AwsAccount

    return sum(
        1
        for discovered_at in AwsAccount.objects.enabled().values_list(
            "regions_discovered_at", flat=True
        )
        if discovered_at is None or discovered_at <= now - REGION_DISCOVERY_MAX_AGE
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (Linux), to tell the fake world's share of the peak from the console's."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mb()


def run(label: str, fake, accounts: list[str], checks: int) -> dict:
    from cleanup import actions
    from cleanup.models import DeletionCheck

    discoveries = undiscovered(NOW)
    fake.calls.clear()
    started = time.perf_counter()
    swept = actions.do_sweep(now=NOW)
    sweep_seconds = time.perf_counter() - started
    sweep_calls = Counter(fake.calls)
    fake.calls.clear()
    started = time.perf_counter()
    decided = actions.do_run_due_checks(now=NOW, limit=checks)
    decide_seconds = time.perf_counter() - started
    decide_calls = Counter(fake.calls)
    repositories = (
        DeletionCheck.objects.filter(snapshot_id=decided.snapshot_id)
        .values("image__repository")
        .distinct()
        .count()
    )
    once = lower_bound_snapshot(fake, accounts)
    bound = once + once  # one snapshot for the sweep, one for the batch
    bound["DescribeRegions"] += discoveries
    bound["ListTagsForResource"] += repositories
    bound["DescribeImages"] += repositories
    total = sweep_calls + decide_calls
    print(f"\n== {label} run ==")
    print(
        f"sweep: {len(swept.scheduled):,} checks scheduled, {swept.in_use:,} images in use, {sweep_seconds:.1f} s"
    )
    print(
        f"run-due: {sum(decided.decided.values()):,} checks decided { {str(status): count for status, count in decided.decided.items()} } in {decide_seconds:.1f} s"
    )
    if swept.errors or decided.errors:
        print(f"errors: {(swept.errors + decided.errors)[:3]}")
    print(f"peak memory (max RSS so far): {peak_mb():.0f} MB")
    print(f"{'operation':<26}{'sweep':>8}{'run-due':>9}{'total':>8}{'lower bound':>13}")
    for operation in sorted(set(total) | set(bound)):
        print(
            f"{operation:<26}{sweep_calls[operation]:>8}{decide_calls[operation]:>9}{total[operation]:>8}{bound[operation]:>13}"
        )
    calls, floor = sum(total.values()), sum(bound.values())
    print(
        f"{'all':<26}{sum(sweep_calls.values()):>8}{sum(decide_calls.values()):>9}{calls:>8}{floor:>13}  ratio {calls / floor:.3f}"
    )
    return {
        "label": label.split()[0],
        "seconds": sweep_seconds + decide_seconds,
        "decide_seconds": decide_seconds,
        "decided": sum(decided.decided.values()),
        "calls": calls,
        "bound": floor,
        "ratio": calls / floor,
        "describe_task_definition": total["DescribeTaskDefinition"],
        "get_function": total["GetFunction"],
        "describe_regions": total["DescribeRegions"],
        "peak_mb": peak_mb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="1x", help="a preset for the five numbers below"
    )
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--repositories", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument("--task-definitions", type=int)
    parser.add_argument("--checks", type=int)
    options = parser.parse_args()
    for name, value in SIZES[options.size].items():
        if getattr(options, name) is None:
            setattr(options, name, value)

    call_command("migrate", verbosity=0)
    import pytest
    from cleanup_world import GeneratedAws
    from django.conf import settings

    from accounts.models import AwsAccount
    from cleanup import actions, usage
    from cleanup.models import DeletionCheck

    settings.CLEANUP_SKIP_SOURCES = []  # every source, App Runner included: the fake has them all
    fake = GeneratedAws()
    patch = pytest.MonkeyPatch()
    fake.install(patch)
    started = time.perf_counter()
    shape = build(
        fake,
        options.accounts,
        options.repositories,
        options.images // options.repositories,
        options.task_definitions,
    )
    world_mb = rss_mb()
    # Registered in one region, usage read in every enabled one (usage_regions empty).
    AwsAccount.objects.create(
        account_id=REGISTRY,
        name="registry",
        regions=REGIONS[:1],
        is_registry=True,
        environment="shared",
    )
    for n, account_id in enumerate(shape["workloads"]):
        AwsAccount.objects.create(account_id=account_id, name=f"workload-{n}", regions=REGIONS[:1])
    accounts = [REGISTRY, *shape["workloads"]]
    synced_at = time.perf_counter()
    actions.do_sync_inventory(now=NOW)
    sync_seconds = time.perf_counter() - synced_at
    versions = sum(
        len(f.versions) for place in fake.regions.values() for f in place.functions.values()
    )
    print(
        f"inventory: {options.accounts} workload accounts x {len(REGIONS)} regions (registered in "
        f"{REGIONS[0]}, found by DescribeRegions), "
        f"{shape['per_region'] * options.accounts * len(REGIONS):,} ACTIVE task definitions, "
        f"{versions:,} Lambda function versions ($LATEST and {VERSIONS} published each), "
        f"{options.repositories:,} repositories, {options.images:,} images (built and synced in "
        f"{time.perf_counter() - started:.1f} s, the sync {sync_seconds:.1f} s)"
    )
    print(
        f"memory: {world_mb:.0f} MB resident once the fake world was built (Python, Django, boto3 "
        f"and the generated fake), {peak_mb():.0f} MB peak after the sync"
    )

    usage.clear_caches(database=True)
    cold = run("cold (nothing cached, regions not discovered)", fake, accounts, options.checks)
    # Close the first batch so the sweep schedules afresh, then run again with warm caches.
    DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN).update(status="cancelled")
    warm = run(
        "warm (task definitions, function versions and regions cached)",
        fake,
        accounts,
        options.checks,
    )
    patch.undo()

    print("\n== summary ==")
    print(
        f"{'run':<6}{'time s':>8}{'AWS calls':>11}{'lower bound':>13}{'ratio':>7}"
        f"{'DescribeTaskDefinition':>24}{'GetFunction':>13}{'DescribeRegions':>17}{'peak RSS MB':>13}"
    )
    for row in (cold, warm):
        print(
            f"{row['label']:<6}{row['seconds']:>8.1f}{row['calls']:>11,}{row['bound']:>13,}"
            f"{row['ratio']:>7.3f}{row['describe_task_definition']:>24,}{row['get_function']:>13,}"
            f"{row['describe_regions']:>17,}{row['peak_mb']:>13.0f}"
        )

    print("\n== targets ==")
    ok = True
    budget = 60 * options.checks / 10_000  # 10,000 checks a minute, whatever the batch
    for name, passed in [
        ("warm run makes no DescribeTaskDefinition call", warm["describe_task_definition"] == 0),
        ("warm run makes no GetFunction call", warm["get_function"] == 0),
        ("warm run at most 1.2 x the lower bound of calls", warm["ratio"] <= 1.2),
        (
            "DescribeRegions at most once a day per account",
            cold["describe_regions"] + warm["describe_regions"] <= len(accounts),
        ),
        (
            f"{options.checks:,} checks decided in under {budget:.0f} s (cold)",
            cold["decided"] >= options.checks and cold["decide_seconds"] < budget,
        ),
        (
            f"{options.checks:,} checks decided in under {budget:.0f} s (warm)",
            warm["decided"] >= options.checks and warm["decide_seconds"] < budget,
        ),
        (f"peak memory under {MEMORY_LIMIT_MB:,} MB", warm["peak_mb"] < MEMORY_LIMIT_MB),
    ]:
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
