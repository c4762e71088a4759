"""Who is acting right now, for audit events written by signal receivers (audit/signals.py).

A receiver of ``post_save`` or ``m2m_changed`` is not handed a request, so the door a change came
through is kept in context variables:

- a web request (``AuditActorMiddleware``): the signed-in user; ``sso`` during the single sign-on
  callback (roles synced from the identity provider before anyone is signed in); else
  ``anonymous``;
- a worker task (bound by ``console.logs``): ``worker``;
- a management command (``createsuperuser``, ``changepassword``, ``shell``, the console's own):
  ``cli:<os user>``;
- anything else: ``system``.

Actions that write their own, richer event for a change (accounts/users.py) run it inside
``audited_by_action()`` so the same change is not recorded twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

from console import logs
from console.cli import cli_actor

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.core.management.base import BaseCommand

SSO_CALLBACK = "oidc_authentication_callback"

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_command: ContextVar[str | None] = ContextVar("audit_command", default=None)
_audited_by_action: ContextVar[bool] = ContextVar("audited_by_action", default=False)


def current_actor() -> str:
    request = _request.get()
    if request is not None:
        user: AbstractBaseUser | AnonymousUser | None = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user.get_username()
        match = getattr(request, "resolver_match", None)
        return "sso" if match is not None and match.url_name == SSO_CALLBACK else "anonymous"
    if logs.current().get("task"):
        return "worker"
    return _command.get() or "system"


class AuditActorMiddleware:
    """Keeps the request at hand for ``current_actor()`` (after AuthenticationMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def bind_command_actor() -> None:
    """Run every management command with ``cli:<os user>`` as the actor. Django sends no signal
    when a command starts, so ``BaseCommand.execute`` is wrapped once, at start-up; the wrapper
    covers Django's own commands (``createsuperuser`` makes the only superusers there are)."""
    from django.core.management.base import BaseCommand

    if getattr(BaseCommand.execute, "binds_cli_actor", False):
        return
    execute = BaseCommand.execute

    @functools.wraps(execute)
    def execute_as_cli(self: BaseCommand, *args: Any, **options: Any) -> str | None:
        token = _command.set(cli_actor())
        try:
            return execute(self, *args, **options)
        finally:
            _command.reset(token)

    execute_as_cli.binds_cli_actor = True  # type: ignore[attr-defined]  # a marker on the function
    BaseCommand.execute = execute_as_cli  # type: ignore[method-assign]  # wrapped on purpose, once


@contextmanager
def audited_by_action() -> Iterator[None]:
    """The changes made inside are recorded by the calling action's own event."""
    token = _audited_by_action.set(True)
    try:
        yield
    finally:
        _audited_by_action.reset(token)


def is_audited_by_action() -> bool:
    return _audited_by_action.get()
