"""docs/deploy.md stays true to the templates' parameters, the README's settings table and the
commands it tells people to run."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy import permissions

ROOT = permissions.ROOT
DOC = (ROOT / "docs" / "deploy.md").read_text()
README = (ROOT / "README.md").read_text()
# AWS API, error and metric names the doc quotes (not template parameters or outputs).
AWS_NAMES = {
    "AccessDenied",
    "BatchDeleteImage",
    "DeleteTaskDefinitions",
    "DeregisterTaskDefinition",
    "FailedInvocations",
    "GetFunctionConfiguration",
    "SelectAggregateResourceConfig",
    "UpdateEventSourceMapping",
}
# Variables docker-compose.yml reads itself, not the console.
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD", "APP_DB_PASSWORD", "CONSOLE_PORT", "WEB_CONCURRENCY"}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def readme_settings() -> set[str]:
    rows = [line for line in README.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def template_parameters(name: str) -> dict[str, dict]:
    return dict(permissions.load(permissions.TEMPLATES / name)["Parameters"])


@pytest.mark.parametrize(
    ("template", "stack"),
    [
        ("console-account.yaml", "--stack-name platform-console \\"),
        ("registry-account.yaml", "--stack-name platform-console-registry"),
        ("workload-account.yaml", "--stack-set-name platform-console-workload \\\n  --template"),
    ],
)
def test_every_parameter_the_doc_passes_exists_and_every_required_one_is_passed(template, stack):
    (block,) = [b for b in code_blocks("sh") if stack in b]
    if "ParameterKey=" in block:
        passed = set(re.findall(r"ParameterKey=(\w+)", block))
    else:
        passed = set(re.findall(r"([A-Z]\w+)=", block.split("--parameter-overrides", 1)[1]))
    parameters = template_parameters(template)

    assert passed <= set(parameters), passed - set(parameters)
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    assert required <= passed, required - passed


def test_every_parameter_the_doc_names_exists_in_some_template():
    known = {
        name
        for template in ("console-account.yaml", "registry-account.yaml", "workload-account.yaml")
        for name in template_parameters(template)
    }
    outputs = {
        name
        for template in ("console-account.yaml", "registry-account.yaml", "workload-account.yaml")
        for name in permissions.load(permissions.TEMPLATES / template).get("Outputs", {})
    }
    named = set(re.findall(r"`([A-Z][a-z]+(?:[A-Z][a-z]*)+)`", DOC)) - AWS_NAMES
    assert named <= known | outputs, named - known - outputs


def test_every_setting_in_the_doc_is_in_the_readme_settings_table():
    settings = readme_settings()
    in_env_blocks = {
        line.split("=", 1)[0]
        for block in code_blocks("env")
        for line in block.splitlines()
        if "=" in line
    }
    assert in_env_blocks - COMPOSE_VARIABLES <= settings, (
        in_env_blocks - COMPOSE_VARIABLES - settings
    )
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9]+_[A-Z0-9_]+)", DOC))
    assert mentioned - COMPOSE_VARIABLES <= settings, mentioned - COMPOSE_VARIABLES - settings


def test_the_compose_file_runs_the_services_the_doc_describes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "watchdog"}
    assert "postgres-data" in compose["volumes"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["python", "manage.py", "qcluster"]
    for name in ("postgres", "redis", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert all(services[name]["env_file"] == ".env" for name in ("migrate", "web", "worker"))
    # A dead worker cannot say so: the watchdog runs outside it.
    assert "manage.py notify watchdog" in " ".join(services["watchdog"]["command"])


def test_the_cli_commands_in_the_doc_exist():
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    used = re.findall(r"manage\.py (\w+)(?: (\w[\w-]*))?", DOC)
    for command, subcommand in used:
        assert command in commands, command
        parser = load_command_class(commands[command], command).create_parser("manage.py", command)
        choices = next(
            (action.choices for action in parser._actions if getattr(action, "choices", None)), None
        )
        if choices and isinstance(choices, dict):
            assert subcommand in choices, f"manage.py {command} {subcommand}"
