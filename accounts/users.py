"""The console's user management (the Users page): invite, change role, deactivate, reactivate.

What an admin can do here is bounded on purpose, because Django's admin is root (accounts/admin.py):
every function checks the actor's permission again, never touches a superuser's account, never
sets a staff or superuser flag or a permission, and only ever puts a user in exactly one of the
role groups (or none). Each writes one audit event in the transaction of its change; the signal
receivers of audit/signals.py stand aside for it (``actors.audited_by_action``).
"""

from __future__ import annotations

import secrets
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts import actors
from accounts.roles import NO_ROLE, ROLES
from console import clock

PASSWORD_BYTES = 18  # 24 URL-safe characters
# Session engines whose sessions are rows that can be found and ended.
DATABASE_SESSION_ENGINES = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}


def members(**filters: Any) -> list[User]:
    """Users by name, each with ``role``: the highest role group they are in (roles nest)."""
    rows = list(User.objects.filter(**filters).order_by("username").prefetch_related("groups"))
    for row in rows:
        names = {group.name for group in row.groups.all()}
        # Not a field: what the Users page shows and offers to change.
        row.role = next((role for role in reversed(ROLES) if role in names), NO_ROLE)  # type: ignore[attr-defined]
    return rows


def get_member(user_id: int) -> User:
    (member,) = members(pk=user_id)
    return member


def do_invite_user(*, by: User, username: str, email: str, role: str) -> tuple[User, str | None]:
    """Create a user in ``role``. Returns the user and the one-time password to hand over (shown
    once, never stored in clear), or ``None`` when single sign-on is on: then the account has no
    password and the identity provider signs the person in, matched by e-mail. Raises
    ``ValidationError`` (nothing written) for a taken user name or e-mail."""
    _authorize(by, "auth.add_user")
    _check_role(role)
    if not email:
        raise ValidationError({"email": "Give the person's e-mail address."})
    user = User(username=username, email=email)
    password = None if settings.OIDC_ENABLED else secrets.token_urlsafe(PASSWORD_BYTES)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    # Unique regardless of case: "Ada" beside "ada" is a trap, and single sign-on matches users
    # by e-mail (two users with one address could sign in as neither).
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with this name already exists."})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with this e-mail address already exists."})
    user.full_clean()
    with transaction.atomic(), actors.audited_by_action():
        user.save()
        if role != NO_ROLE:
            user.groups.add(Group.objects.get(name=role))
        _record(by, "user.invited", user, email=email, role=role, sign_in=_sign_in(password))
    return user, password


def do_change_role(member: User, *, by: User, role: str) -> bool:
    """Put the user in exactly ``role`` (``none``: in no role group). Other groups stay as they
    are. Returns whether anything changed (no event when nothing did)."""
    _authorize(by, "auth.change_user")
    _check_role(role)
    with transaction.atomic(), actors.audited_by_action():
        member = _lock(member, by, refuse_self="You cannot change your own role.")
        have = set(member.groups.filter(name__in=ROLES).values_list("name", flat=True))
        wanted = set() if role == NO_ROLE else {role}
        if have == wanted:
            return False
        member.groups.remove(*Group.objects.filter(name__in=have - wanted))
        member.groups.add(*Group.objects.filter(name__in=wanted - have))
        before = "+".join(sorted(have, key=ROLES.index)) or NO_ROLE
        _record(by, "user.role_changed", member, **{"from": before, "to": role})
    return True


def do_deactivate_user(member: User, *, by: User) -> bool:
    """The user can no longer sign in, and their open sessions end now."""
    _authorize(by, "auth.change_user")
    with transaction.atomic(), actors.audited_by_action():
        member = _lock(member, by, refuse_self="You cannot deactivate yourself.")
        if not member.is_active:
            return False
        member.is_active = False
        member.save(update_fields=["is_active"])
        ended = _end_sessions(member)
        _record(by, "user.deactivated", member, sessions_ended=ended)
    return True


def do_reactivate_user(member: User, *, by: User) -> bool:
    _authorize(by, "auth.change_user")
    with transaction.atomic(), actors.audited_by_action():
        member = _lock(member, by)
        if member.is_active:
            return False
        member.is_active = True
        member.save(update_fields=["is_active"])
        _record(by, "user.reactivated", member)
    return True


def _authorize(by: User, permission: str) -> None:
    # The views check too; checking here keeps every other door (a command, a task) as narrow.
    if not (by.is_active and by.has_perm(permission)):
        raise PermissionDenied(f"{by.get_username()} may not {permission}")


def _check_role(role: str) -> None:
    if role not in {*ROLES, NO_ROLE}:
        raise ValidationError(
            {"role": f"{role!r} is not a role: choose viewer, operator, admin or none."}
        )


def _lock(member: User, by: User, refuse_self: str = "") -> User:
    """The user's row, locked, as it is now (not as the page saw it)."""
    member = User.objects.select_for_update().get(pk=member.pk)
    if member.is_superuser:
        raise PermissionDenied("A superuser is managed with manage.py and Django's admin only.")
    if refuse_self and member.pk == by.pk:
        raise PermissionDenied(refuse_self)
    return member


def _end_sessions(user: User) -> int:
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return 0
    from django.contrib.sessions.models import Session

    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=clock.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


def _sign_in(password: str | None) -> str:
    return "single sign-on" if password is None else "one-time password"


def _record(by: User, action: str, member: User, **details: Any) -> None:
    audit.record(
        by.get_username(),
        action,
        target_type="user",
        target_id=member.pk,
        target_label=member.get_username(),
        details=details,
    )
