from django.contrib import admin

from webhooks.models import InboundEvent


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """Read-only: events change only through the inbox's actions."""

    list_display = ["received_at", "source", "kind", "status", "dedupe_key", "attempts"]
    list_filter = ["source", "kind", "status"]
    search_fields = ["dedupe_key", "summary", "topic_arn"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
