from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from webhooks.models import InboundEvent

if TYPE_CHECKING:  # ModelAdmin is generic only in django-stubs, not at runtime
    InboundEventAdminBase = admin.ModelAdmin[InboundEvent]
else:
    InboundEventAdminBase = admin.ModelAdmin


@admin.register(InboundEvent)
class InboundEventAdmin(InboundEventAdminBase):
    """Read-only: events change only through the inbox's actions."""

    list_display = ["received_at", "source", "kind", "status", "dedupe_key", "attempts"]
    list_filter = ["source", "kind", "status"]
    search_fields = ["dedupe_key", "summary", "topic_arn"]

    def has_add_permission(self, request: HttpRequest, obj: InboundEvent | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: InboundEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: InboundEvent | None = None) -> bool:
        return False
