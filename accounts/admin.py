from django.contrib import admin

from accounts.models import AwsAccount


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
