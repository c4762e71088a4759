"""Shared fixtures: named personas, an in-process AWS (moto), and a clean AWS client cache."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from moto import mock_aws

from accounts import aws as accounts_aws
from scenarios import moto_server

PASSWORD = "correct-horse-battery-staple"


def rows(*models) -> dict[str, list[dict]]:
    """Every row of ``models``, field by field. Taken before a refused request and again after
    it, the two must be equal: a 403 changes nothing."""
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", "admin")


@pytest.fixture
def operator_user(db) -> User:
    return make_user("oscar", "operator")


@pytest.fixture
def viewer_user(db) -> User:
    return make_user("vera", "viewer")


@pytest.fixture
def outsider_user(db) -> User:
    return make_user("olga", None)


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user) -> Client:
    return _client_for(admin_user)


@pytest.fixture
def operator_client(operator_user) -> Client:
    return _client_for(operator_user)


@pytest.fixture
def viewer_client(viewer_user) -> Client:
    return _client_for(viewer_user)


@pytest.fixture
def outsider_client(outsider_user) -> Client:
    return _client_for(outsider_user)


@pytest.fixture(autouse=True)
def fresh_aws_clients():
    """Cached sessions must not outlive a moto backend (assumed-role keys would be unknown)."""
    accounts_aws.clear_caches()
    yield
    accounts_aws.clear_caches()


@pytest.fixture
def aws():
    """An in-process AWS. Accounts other than moto's default are reached through AssumeRole."""
    with mock_aws(config={"core": {"reset_boto3_session": False}, **moto_server.CONFIG}):
        yield


@pytest.fixture
def make_account(db):
    """Register an account the way the console does, with a role ARN into it."""
    from accounts import actions

    def make(account_id: str = "222222222222", name: str = "production", **fields):
        fields.setdefault("role_arn", f"arn:aws:iam::{account_id}:role/platform-console")
        fields.setdefault("regions", ["eu-west-1"])
        # Usage read in the account's own regions: moto answers 38 enabled regions, and every test
        # that does not test region discovery would pay for all of them.
        fields.setdefault("usage_regions", list(fields["regions"]))
        fields.setdefault("environment", "prod")
        return actions.do_add_account(actor="fixture", account_id=account_id, name=name, **fields)

    return make


# --- AWS permissions coverage (tests/deploy/recorder.py) ---------------------------------------


def pytest_configure(config):
    from tests.deploy import recorder

    recorder.install()


def pytest_sessionfinish(session, exitstatus):
    from tests.deploy import recorder

    recorder.check(session)


def pytest_collection_modifyitems(items):
    """Tests that commit (live server, transactional_db) end with a flush, which would take the
    roles of the data migrations with it: restore the migrated rows for every one of them."""
    for item in items:
        names = getattr(item, "fixturenames", [])
        marker = item.get_closest_marker("django_db")
        committing = "live_server" in names or "transactional_db" in names
        transactional = committing or (marker and marker.kwargs.get("transaction"))
        if transactional and "django_db_serialized_rollback" not in names:
            names.append("django_db_serialized_rollback")
