"""The CloudFormation templates: least privilege, the opt-in tag condition, lint-clean, and the
permission coverage comparison the suite runs at the end (tests/deploy/recorder.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cfnlint.api import ManualArgs, lint_file

from tests.deploy import permissions, recorder

TEMPLATES = permissions.TEMPLATES
BIN = Path(sys.executable).parent
# What the console's gateways call (the recorder's answer for the whole suite, kept here so
# this test does not depend on which other tests ran).
CALLED = {
    ("ecr", "DescribeRepositories"),
    ("ecr", "DescribeImages"),
    ("ecr", "BatchGetImage"),
    ("ecr", "BatchDeleteImage"),
    ("ecr", "ListTagsForResource"),
    ("ecr", "TagResource"),
    ("ecr", "UntagResource"),
    ("ecr", "DescribeRegistry"),
    ("ecr", "UpdateImageStorageClass"),
    ("config", "SelectAggregateResourceConfig"),
    ("ecs", "ListTaskDefinitions"),
    ("ecs", "DescribeTaskDefinition"),
    ("ecs", "ListClusters"),
    ("ecs", "ListServices"),
    ("ecs", "DescribeServices"),
    ("ecs", "ListTasks"),
    ("ecs", "DescribeTasks"),
    ("lambda", "ListFunctions"),
    ("lambda", "GetFunction"),
    ("batch", "DescribeJobDefinitions"),
    ("apprunner", "ListServices"),
    ("apprunner", "DescribeService"),
    ("ec2", "DescribeRegions"),
    ("lambda", "GetFunctionConfiguration"),
    ("lambda", "ListEventSourceMappings"),
    ("lambda", "GetEventSourceMapping"),
    ("lambda", "UpdateEventSourceMapping"),
    ("lambda", "Invoke"),
    ("sqs", "GetQueueUrl"),
    ("sqs", "ReceiveMessage"),
    ("sqs", "DeleteMessage"),
    ("cloudwatch", "DescribeAlarms"),
    ("sts", "AssumeRole"),
    ("sts", "GetCallerIdentity"),
    ("organizations", "ListAccounts"),
    ("organizations", "ListRoots"),
    ("organizations", "ListAccountsForParent"),
    ("organizations", "ListOrganizationalUnitsForParent"),
}


@pytest.fixture(scope="module")
def templates() -> dict[str, dict]:
    return permissions.load_all()


def test_the_templates_grant_every_operation_the_console_calls(templates):
    result = permissions.compare(CALLED, templates)
    assert result.missing == []
    assert result.unused == []


def test_an_action_removed_from_a_copy_of_a_template_is_reported(tmp_path, templates):
    original = (TEMPLATES / "registry-account.yaml").read_text()
    assert original.count("- ecr:DescribeImages\n") == 1
    copy = tmp_path / "registry-account.yaml"
    copy.write_text(original.replace("                  - ecr:DescribeImages\n", ""))

    result = permissions.compare(
        CALLED, {**templates, "registry-account.yaml": permissions.load(copy)}
    )

    assert result.missing == ["registry-account.yaml: ecr:DescribeImages"]


def test_an_operation_of_a_service_no_template_covers_is_reported(templates):
    result = permissions.compare({("s3", "ListBuckets")}, templates)
    assert result.missing == ["(no template grants s3): s3:ListBuckets"]


def test_operations_map_to_iam_actions():
    assert permissions.iam_action("lambda", "Invoke") == "lambda:InvokeFunction"
    assert permissions.iam_action("cloudwatch", "DescribeAlarms") == "cloudwatch:DescribeAlarms"
    assert permissions.iam_action("ecr", "BatchDeleteImage") == "ecr:BatchDeleteImage"


def test_only_calls_made_through_the_console_gateways_are_recorded():
    client = boto3.client(
        "ecr", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    operation = ("ecr", "GetAuthorizationToken")
    assert operation not in recorder.calls
    # Code compiled under a gateway's file name stands for the gateway calling.
    gateway: dict = {}
    source = "def call(client):\n    return client.get_authorization_token()\n"
    exec(compile(source, str(recorder.ROOT / "cleanup" / "aws" / "ecr.py"), "exec"), gateway)
    try:
        with Stubber(client) as stub:
            stub.add_response("get_authorization_token", {"authorizationData": []})
            stub.add_response("get_authorization_token", {"authorizationData": []})
            client.get_authorization_token()  # a test setting things up: not the console
            assert operation not in recorder.calls
            gateway["call"](client)
        assert operation in recorder.calls
    finally:
        recorder.calls.discard(operation)  # not a real call of the console's


def test_the_delete_permission_carries_the_opt_in_tag_condition(templates):
    template = templates["registry-account.yaml"]
    deletes = [
        s
        for s in permissions.statements(template, "ConsoleRegistryRole")
        if "ecr:BatchDeleteImage" in permissions.as_list(s["Action"])
    ]

    assert len(deletes) == 1
    (statement,) = deletes
    assert permissions.as_list(statement["Action"]) == ["ecr:BatchDeleteImage"]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/ecr-cleanup": "enabled"}}
    assert statement["Resource"] == "arn:aws:ecr:*:123456789012:repository/*"
    # The key and value are the template's parameters, whose defaults match CLEANUP_OPT_IN_TAG.
    source = (TEMPLATES / "registry-account.yaml").read_text()
    assert '"aws:ResourceTag/${OptInTagKey}": "${OptInTagValue}"' in source


def test_the_tag_write_permission_is_limited_to_the_opt_in_key(templates):
    template = templates["registry-account.yaml"]
    (tagging,) = [
        s
        for s in permissions.statements(template, "ConsoleRegistryRole")
        if "ecr:TagResource" in permissions.as_list(s["Action"])
    ]
    assert tagging["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": [{"Ref": "OptInTagKey"}]}
    }


@pytest.mark.parametrize(
    "name",
    [
        "console-account.yaml",
        "registry-account.yaml",
        "workload-account.yaml",
        "organization-account.yaml",
    ],
)
def test_no_statement_allows_a_wildcard_action(name):
    template = permissions.load(TEMPLATES / name)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in permissions.statements(template, logical_id):
            for action in permissions.as_list(statement["Action"]):
                assert "*" not in str(action), f"{name} {logical_id} grants {action}"


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("registry-account.yaml", "ConsoleRegistryRole"),
        ("workload-account.yaml", "ConsoleWorkloadRole"),
        ("organization-account.yaml", "ConsoleOrganizationsRole"),
    ],
)
def test_the_assumed_roles_trust_only_the_console_role_with_the_external_id(name, role):
    template = permissions.load(TEMPLATES / name)
    (trust,) = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "ConsoleRoleArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}


def test_the_console_role_may_assume_exactly_the_roles_the_other_templates_create(templates):
    console = templates["console-account.yaml"]
    defaults = permissions.parameter_defaults(console)
    workload = permissions.parameter_defaults(templates["workload-account.yaml"])
    registry = permissions.parameter_defaults(templates["registry-account.yaml"])
    organization = permissions.parameter_defaults(templates["organization-account.yaml"])
    assert defaults["WorkloadRoleName"] == workload["RoleName"]
    assert defaults["RegistryRoleName"] == registry["RoleName"]
    assert defaults["OrganizationsRoleName"] == organization["RoleName"]
    (assume,) = permissions.statements(console, "ConsoleRole")
    assert assume["Action"] == "sts:AssumeRole"
    assert [r["Fn::Sub"] for r in assume["Resource"]] == [
        "arn:${AWS::Partition}:iam::*:role/${WorkloadRoleName}",
        "arn:${AWS::Partition}:iam::*:role/${RegistryRoleName}",
        "arn:${AWS::Partition}:iam::*:role/${OrganizationsRoleName}",
    ]


def test_cfn_lint_reports_nothing():
    for template in sorted(TEMPLATES.glob("*.yaml")):
        matches = lint_file(template, config=ManualArgs(regions=["us-east-1"]))
        assert [str(m) for m in matches] == [], template.name


def test_hadolint_passes_on_the_dockerfile_with_no_rule_ignored():
    makefile = (permissions.ROOT / "Makefile").read_text()
    assert "$(VENV)/bin/hadolint Dockerfile" in makefile
    result = subprocess.run(
        [str(BIN / "hadolint"), "Dockerfile"],
        cwd=permissions.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_registry_role_must_answer_the_usage_sources_too(templates):
    """Cleanup asks every enabled account what it runs, the registry account included."""
    registry = permissions.load(TEMPLATES / "registry-account.yaml")
    registry["Resources"]["ConsoleRegistryRole"]["Properties"]["Policies"] = [
        policy
        for policy in registry["Resources"]["ConsoleRegistryRole"]["Properties"]["Policies"]
        if policy["PolicyName"] != "usage-sources"
    ]
    result = permissions.compare(CALLED, {**templates, "registry-account.yaml": registry})
    assert "registry-account.yaml: ecs:ListTaskDefinitions" in result.missing
    assert "registry-account.yaml: lambda:GetFunction" in result.missing
