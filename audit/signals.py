"""Audit events written by signal receivers: sign-ins, lock-outs, and every change to users,
groups and permissions, whatever the door (the console's pages, Django's admin, a management
command, ``manage.py shell``, single sign-on). The actor comes from ``accounts.actors``.

Not seen here: ``QuerySet.update()`` and raw SQL, which send no signal. Not recorded: rows loaded
raw (fixtures, a test database restored between tests), and data migrations, whose historical
models are other classes than the ones connected here, so the receivers never run before the
audit table exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import ManyToManyField, Model, QuerySet
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
)
from django.dispatch import receiver
from django.http import HttpRequest

import audit
from accounts import actors
from accounts.signin import client_ip

USER_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser")
# Compared too, but recorded as "changed" only: the hash stays out of the history. A save of the
# password alone is Django upgrading the hash at sign-in, not a new password.
SECRET_FIELDS = ("password",)


# --- Sign-in -------------------------------------------------------------------------------------


@receiver(user_login_failed)
def record_login_failure(
    sender: Any,
    credentials: dict[str, Any] | None,
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    username = (credentials or {}).get("username", "")
    audit.record(
        actor=username or "anonymous",
        action="auth.login_failed",
        target_type="user",
        target_label=username,
        details={"ip": _client_ip(request)},
    )


@receiver(user_logged_in)
def record_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit.record(
        actor=user.get_username(),
        action="auth.logged_in",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        details={"ip": _client_ip(request)},
    )


@receiver(user_locked_out)
def record_lockout(
    sender: Any,
    request: HttpRequest | None,
    username: str | None,
    ip_address: str | None,
    **kwargs: Any,
) -> None:
    """django-axes refused a sign-in: too many failures for this user name or address. Sent for
    the failure that reaches the limit and for every attempt refused while the lock lasts."""
    audit.record(
        actor=username or "anonymous",
        action="auth.locked_out",
        target_type="user",
        target_label=username or "",
        details={
            "ip": ip_address or "",
            "failures": getattr(request, "axes_failures_since_start", None),
            "limit": settings.AXES_FAILURE_LIMIT,
        },
    )


def _client_ip(request: HttpRequest | None) -> str:
    return client_ip(request) if request is not None else ""


# --- Users, groups, permissions ------------------------------------------------------------------


def _skipped(instance: Any = None) -> bool:
    return actors.is_audited_by_action() or bool(getattr(instance, "_audit_raw", False))


def _keep(instance: Model, **values: Any) -> None:
    """Keep ``values`` on the instance from one signal to the next (``_audit_*`` attributes)."""
    for name, value in values.items():
        setattr(instance, name, value)


def _record(action: str, target: User | Group, **details: Any) -> None:
    audit.record(
        actors.current_actor(),
        action,
        target_type="user" if isinstance(target, User) else "group",
        target_id=target.pk,
        target_label=_label(target),
        details=details,
    )


def _label(obj: User | Group | Permission) -> str:
    if isinstance(obj, User):
        return obj.get_username()
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return obj.name


@receiver(pre_save, sender=User)
def _remember_user(
    sender: Any,
    instance: User,
    raw: bool,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    _keep(instance, _audit_raw=raw, _audit_before=None)
    if raw or _skipped() or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(USER_FIELDS):
        return  # last_login at every sign-in, names from single sign-on, a hash upgrade
    fields = (*USER_FIELDS, *SECRET_FIELDS)
    _keep(instance, _audit_before=User.objects.filter(pk=instance.pk).values(*fields).first())


@receiver(post_save, sender=User)
def record_user_saved(sender: Any, instance: User, created: bool, raw: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_audit_before", None)
    _keep(instance, _audit_before=None)
    if raw or _skipped():
        return
    if created:
        _record("user.created", instance, **{f: getattr(instance, f) for f in USER_FIELDS})
        return
    if before is None:
        return
    changes: dict[str, Any] = {
        field: {"from": before[field], "to": getattr(instance, field)}
        for field in USER_FIELDS
        if before[field] != getattr(instance, field)
    }
    changes.update(
        {field: "changed" for field in SECRET_FIELDS if before[field] != getattr(instance, field)}
    )
    if changes:
        _record("user.changed", instance, **changes)


@receiver(post_delete, sender=User)
def record_user_deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    if not _skipped():
        _record("user.deleted", instance, **{f: getattr(instance, f) for f in USER_FIELDS})


@receiver(pre_save, sender=Group)
def _remember_group(sender: Any, instance: Group, raw: bool, **kwargs: Any) -> None:
    _keep(instance, _audit_raw=raw, _audit_name=None)
    if not raw and instance.pk is not None and not _skipped():
        _keep(
            instance,
            _audit_name=Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first(),
        )


@receiver(post_save, sender=Group)
def record_group_saved(
    sender: Any, instance: Group, created: bool, raw: bool, **kwargs: Any
) -> None:
    before = getattr(instance, "_audit_name", None)
    _keep(instance, _audit_name=None)
    if raw or _skipped():
        return
    if created:
        _record("group.created", instance, name=instance.name)
    elif before is not None and before != instance.name:
        _record("group.renamed", instance, **{"from": before, "to": instance.name})


@receiver(pre_delete, sender=Group)
def _remember_members(sender: Any, instance: Group, **kwargs: Any) -> None:
    _keep(instance, _audit_members=sorted(instance.user_set.values_list("username", flat=True)))


@receiver(post_delete, sender=Group)
def record_group_deleted(sender: Any, instance: Group, **kwargs: Any) -> None:
    if not _skipped():
        _record(
            "group.deleted",
            instance,
            name=instance.name,
            members=getattr(instance, "_audit_members", []),
        )


# The many-to-many relations that grant something, by their through model: the field, and the
# noun of the events (user.groups_added, user.permissions_removed, group.permissions_added...).
_GRANTS: dict[type[Model], tuple[ManyToManyField[Any, Any], str]] = {
    User.groups.through: (User._meta.get_field("groups"), "groups"),
    User.user_permissions.through: (User._meta.get_field("user_permissions"), "permissions"),
    Group.permissions.through: (Group._meta.get_field("permissions"), "permissions"),
}


def record_grant_changed(
    sender: Any,
    instance: User | Group | Permission,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    """One event per user or group whose groups or permissions changed, from either side of the
    relation (``user.groups.add(group)`` and ``group.user_set.add(user)`` alike)."""
    field, noun = _GRANTS[sender]
    if _skipped(instance):
        return
    if action == "pre_clear":
        # clear() sends no primary keys: read what it is about to take away.
        mine, theirs = field.m2m_field_name(), field.m2m_reverse_field_name()
        if reverse:
            mine, theirs = theirs, mine
        _keep(
            instance,
            _audit_cleared=set(
                sender.objects.filter(**{mine: instance.pk}).values_list(f"{theirs}_id", flat=True)
            ),
        )
        return
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    pks = instance.__dict__.pop("_audit_cleared", set()) if action == "post_clear" else pk_set
    if not pks:
        return
    # Users or groups are granted groups or permissions; ``instance`` is on the side that changed.
    owner_model = cast(type[User] | type[Group], field.model)
    granted_model = cast(type[Group] | type[Permission], field.related_model)
    owners: list[User | Group]
    granted: list[User | Group | Permission]
    if reverse:
        owners, granted = list(owner_model.objects.filter(pk__in=pks)), [instance]
    else:
        owners = [cast(User | Group, instance)]
        granted = list(_with_labels(granted_model).filter(pk__in=pks))
    verb = "added" if action == "post_add" else "removed"
    names = sorted(_label(obj) for obj in granted)
    owner_type = "user" if owner_model is User else "group"
    for owner in owners:
        _record(f"{owner_type}.{noun}_{verb}", owner, **{noun: names})


def _with_labels(model: type[Group] | type[Permission]) -> QuerySet[Group] | QuerySet[Permission]:
    if model is Permission:
        return Permission.objects.select_related("content_type")
    return model.objects.all()


for _through in _GRANTS:
    m2m_changed.connect(
        record_grant_changed, sender=_through, dispatch_uid=f"audit.{_through._meta.label}"
    )
