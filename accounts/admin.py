from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import AwsAccount

if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
    AwsAccountAdminBase = admin.ModelAdmin[AwsAccount]
else:
    AwsAccountAdminBase = admin.ModelAdmin


def superusers_only(request: HttpRequest) -> bool:
    """Django's admin is root: it edits users, permissions and django-q schedules (which name any
    function for the worker to run). Only active superusers may use it, whatever their model
    permissions; `manage.py createsuperuser` is the only way to make one. The console's ``admin``
    role manages users on the console's Users page instead."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = superusers_only  # type: ignore[method-assign]  # the default site's check, replaced on purpose


@admin.register(AwsAccount)
class AwsAccountAdmin(AwsAccountAdminBase):
    """Read-only here: changes go through the console's pages or CLI so they are audited."""

    list_display = [
        "account_id",
        "name",
        "environment",
        "is_registry",
        "enabled",
        "last_verified_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AwsAccount | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AwsAccount | None = None) -> bool:
        return False
