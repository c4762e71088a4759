"""The one place where sandbox data comes from.

``make demo`` (through ``manage.py sandbox_seed``) calls ``seed_all()`` once per run on a fresh
sandbox AWS. Each feature adds its demo data as a module ``sandbox/seed_<feature>.py`` with a
``seed()`` function and lists it in ``SEEDERS``; they run in this order (accounts first: the
others put resources into those accounts). A seeder creates its AWS resources every run (moto's
server starts empty) and must not duplicate console rows that already exist.
"""

from __future__ import annotations

from importlib import import_module

from django.contrib.auth.models import Group, User
from django.db import transaction

SEEDERS = [
    "sandbox.seed_accounts",
    "sandbox.seed_organization",
    "sandbox.seed_cleanup",
    "sandbox.seed_breakers",
    "sandbox.seed_notify",
]
DEMO_ADMIN = "admin"


def seed_all() -> list[str]:
    """Run every seeder that exists; returns the names of those that ran. A seeder module that is
    not there yet is skipped; any other import error is a bug and propagates."""
    ran = []
    for name in SEEDERS:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.seed()
        ran.append(name)
    return ran


@transaction.atomic
def create_demo_admin(password: str) -> User:
    """The demo's administrator: in the ``admin`` role, and a superuser for Django's admin."""
    user, _ = User.objects.get_or_create(username=DEMO_ADMIN)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name="admin"))
    return user
