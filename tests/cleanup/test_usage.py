"""Image references, the task definition cache, Config queries, schedules."""

from __future__ import annotations

import pytest

from cleanup import usage
from console import schedules
from scenarios.fake_aws import FakeAws
from tests.cleanup.conftest import NOW

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/web", ("web", "latest", None)),
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:v1", ("web", "v1", None)),
        (
            f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/a/web@{DIGEST}",
            ("team/a/web", None, DIGEST),
        ),
        (f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:v1@{DIGEST}", ("web", "v1", DIGEST)),
        ("docker.io/library/nginx:1.27", None),
        ("public.ecr.aws/nginx/nginx:latest", None),
        ("nginx", None),
    ],
)
def test_image_references_are_parsed_from_uris(uri, expected):
    ref = usage.parse_image(uri)
    if expected is None:
        assert ref is None
    else:
        assert (ref.registry, ref.region, ref.repository, ref.tag, ref.digest) == (
            "111111111111",
            "eu-west-1",
            *expected,
        )


def test_a_reference_with_tag_and_digest_counts_by_digest_only(db):
    from accounts.models import AwsAccount

    account = AwsAccount(account_id="222222222222", regions=["eu-west-1"])
    ref = usage.reference(
        "s",
        account,
        "eu-west-1",
        "here",
        f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:v1@{DIGEST}",
    )
    assert ref.digest == DIGEST and ref.tag is None


def test_config_queries_stay_under_the_expression_limit():
    uris = [f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:{n:064x}" for n in range(200)]
    expressions = usage.config_expressions(uris)
    assert len(expressions) > 1
    assert all(len(expression) <= usage.CONFIG_EXPRESSION_LIMIT for expression in expressions)
    assert sum(expression.count("@sha256:") for expression in expressions) == 200
    assert "configuration.Status = 'ACTIVE'" in expressions[0]


def test_task_definitions_are_described_once_and_shared_through_the_database(
    make_account, monkeypatch
):
    fake = FakeAws().install(monkeypatch)
    account = make_account("222222222222")
    for n in range(250):
        fake.register(
            "222222222222",
            "eu-west-1",
            f"f{n}",
            [f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:{n}"],
        )
    usage.clear_caches()
    first = usage.take_snapshot(NOW, accounts=[account])
    assert fake.calls["DescribeTaskDefinition"] == 250 and fake.calls["ListTaskDefinitions"] == 3
    fake.calls.clear()
    usage.take_snapshot(NOW, accounts=[account])
    assert fake.calls["DescribeTaskDefinition"] == 0
    usage.clear_caches()  # another worker process: only the shared table is warm
    second = usage.take_snapshot(NOW, accounts=[account])
    assert fake.calls["DescribeTaskDefinition"] == 0
    assert (
        len(second.by_repository[("111111111111", "eu-west-1", "web")])
        == len(first.by_repository[("111111111111", "eu-west-1", "web")])
        == 250
    )


def test_the_cleanup_schedules_are_registered():
    names = {recurring.name: recurring for recurring in schedules.registered()}
    assert names["cleanup.run-due"].minutes == 1
    assert names["cleanup.sync"].minutes == 60
    assert names["cleanup.sweep"].cron
