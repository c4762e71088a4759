from django.contrib import admin
from django.http import HttpRequest

from accounts.models import AwsAccount


def superusers_only(request: HttpRequest) -> bool:
    """Django's admin is root: it edits users, permissions and django-q schedules (which name any
    function for the worker to run). Only active superusers may use it, whatever their model
    permissions; `manage.py createsuperuser` is the only way to make one. The console's ``admin``
    role manages users on the console's Users page instead."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = superusers_only


@admin.register(AwsAccount)
class AwsAccountAdmin(admin.ModelAdmin):
    """Read-only here: changes go through the console's pages or CLI so they are audited."""

    list_display = [
        "account_id",
        "name",
        "environment",
        "is_registry",
        "enabled",
        "last_verified_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
