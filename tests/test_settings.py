"""Start-up with settings from the environment: strict values, and a deployable security setup."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console import env

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-with-plenty-of-entropy-Zq8#vN2!rT5@kL9$wX3",
    "ALLOWED_HOSTS": "console.example.com",
}


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    inherited = {
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "DATABASE_URL",
        "SECURE_SSL_REDIRECT",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DEBUG",
    }
    clean = {key: value for key, value in os.environ.items() if key not in inherited}
    clean.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_prints_no_warning_with_debug_off():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_a_malformed_database_url_stops_start_up_naming_it():
    result = manage("check", **PRODUCTION, DATABASE_URL="mysql-ish:/nowhere")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_secret_key_is_required_when_debug_is_off():
    environment = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}
    result = manage("check", **environment, SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "banana"),
        ("CLEANUP_GRACE_PERIOD", "banana"),
        ("CLEANUP_OPT_IN_TAG", "no-equals-sign"),
        ("Q_REDIS_URL", "localhost:6379"),
        ("Q_WORKERS", "zero"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(name, value):
    result = manage("check", **{**PRODUCTION, name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_redis_broker_is_used_when_q_redis_url_is_set():
    code = "from django.conf import settings; print(settings.Q_CLUSTER.get('redis'), 'orm' in settings.Q_CLUSTER)"
    result = manage(
        "shell", "--no-imports", "-c", code, **PRODUCTION, Q_REDIS_URL="redis://127.0.0.1:6379/3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:6379/3", "False"]


def test_every_task_timeout_is_below_the_cluster_retry(settings):
    assert settings.Q_CLUSTER["timeout"] < settings.Q_CLUSTER["retry"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("0s", 0), ("7d", 604800)]
)
def test_durations_parse(text, seconds):
    assert env.parse_duration(text).total_seconds() == seconds
