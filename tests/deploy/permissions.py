"""What the CloudFormation templates grant, and how it compares with what the code calls.

Pure functions over a loaded template (cfn-lint's YAML loader, which understands ``!Ref`` and
``!Sub``), so a test can hand them a copy of a template with one action removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "cloudformation"

# botocore service name -> IAM service prefix (CloudWatch signs as "monitoring" but IAM says
# "cloudwatch"; the others are the same).
IAM_PREFIX = {
    "ecr": "ecr",
    "ecs": "ecs",
    "lambda": "lambda",
    "sqs": "sqs",
    "cloudwatch": "cloudwatch",
    "sts": "sts",
    "config": "config",
    "batch": "batch",
    "apprunner": "apprunner",
    "ec2": "ec2",
    "organizations": "organizations",
}
# Where an operation's permission lives: which template, and which role in it.
ROLE_FOR_SERVICE = {
    "ecr": ("registry-account.yaml", "ConsoleRegistryRole"),
    "config": ("registry-account.yaml", "ConsoleRegistryRole"),
    "ecs": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "lambda": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "batch": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "apprunner": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "ec2": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "sqs": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "cloudwatch": ("workload-account.yaml", "ConsoleWorkloadRole"),
    "sts": ("console-account.yaml", "ConsoleRole"),
    "organizations": ("organization-account.yaml", "ConsoleOrganizationsRole"),
}
# The usage sources: cleanup asks every enabled account what it runs, the registry account
# included, so the registry role must grant these too (or every check there fails closed).
USAGE_SOURCES = {
    ("ecs", "ListClusters"),
    ("ecs", "ListTaskDefinitions"),
    ("ecs", "DescribeTaskDefinition"),
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
}
# Operations whose IAM action has another name.
ACTION_NAMES = {("lambda", "Invoke"): "InvokeFunction"}
# Operations that need no permission at all.
NO_PERMISSION_NEEDED = {("sts", "GetCallerIdentity")}


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX[service]}:{ACTION_NAMES.get((service, operation), operation)}"


def load(path: Path | str) -> dict[str, Any]:
    return cfn_yaml.load(str(path))


def load_all(directory: Path = TEMPLATES) -> dict[str, dict[str, Any]]:
    return {name: load(directory / name) for name in {t for t, _ in ROLE_FOR_SERVICE.values()}}


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    values = {
        name: str(spec.get("Default", f"<{name}>"))
        for name, spec in template.get("Parameters", {}).items()
    }
    values.update(
        {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"}
    )
    return values


def resolve_sub(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}!]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def policy_documents(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every policy document attached to ``role``: inline in the role, or AWS::IAM::RolePolicy /
    AWS::IAM::Policy resources that name it. ``!Sub`` JSON strings are parsed with the
    parameters' defaults."""
    resources = template["Resources"]
    documents = [p["PolicyDocument"] for p in resources[role]["Properties"].get("Policies", [])]
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::RolePolicy" and properties.get("RoleName") == {
            "Ref": role
        }:
            documents.append(properties["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in properties.get("Roles", []):
            documents.append(properties["PolicyDocument"])
    values = parameter_defaults(template)
    parsed = []
    for document in documents:
        if isinstance(document, dict) and set(document) == {"Fn::Sub"}:
            document = json.loads(resolve_sub(document["Fn::Sub"], values))
        parsed.append(document)
    return parsed


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    found = []
    for document in policy_documents(template, role):
        body = document["Statement"]
        found.extend(body if isinstance(body, list) else [body])
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def granted_actions(template: dict[str, Any], role: str) -> set[str]:
    """Actions the role's Allow statements grant (``*`` actions are not expanded: none may exist)."""
    return {
        str(action)
        for statement in statements(template, role)
        if statement.get("Effect") == "Allow"
        for action in as_list(statement.get("Action", []))
    }


@dataclass
class Comparison:
    missing: list[str]  # called but not granted: "registry-account.yaml: ecr:DescribeImages"
    unused: list[str]  # granted but never called


def compare(calls: set[tuple[str, str]], templates: dict[str, dict[str, Any]]) -> Comparison:
    """Every recorded (service, operation) must be granted by its template's role."""
    granted = {
        (name, role): granted_actions(templates[name], role)
        for name, role in set(ROLE_FOR_SERVICE.values())
    }
    needed: dict[tuple[str, str], set[str]] = {key: set() for key in granted}
    missing = []
    for service, operation in sorted(calls):
        if (service, operation) in NO_PERMISSION_NEEDED:
            continue
        if service not in ROLE_FOR_SERVICE:
            missing.append(f"(no template grants {service}): {service}:{operation}")
            continue
        keys = [ROLE_FOR_SERVICE[service]]
        if (service, operation) in USAGE_SOURCES:
            keys.append(ROLE_FOR_SERVICE["ecr"])
        action = iam_action(service, operation)
        for key in keys:
            needed[key].add(action)
            if action not in granted[key]:
                missing.append(f"{key[0]}: {action}")
    unused = sorted(
        f"{name}: {action}"
        for (name, role), actions in granted.items()
        for action in actions - needed[(name, role)]
    )
    return Comparison(missing=missing, unused=unused)
