from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent

if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
    AuditEventAdminBase = admin.ModelAdmin[AuditEvent]
else:
    AuditEventAdminBase = admin.ModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(AuditEventAdminBase):
    list_display = ["at", "actor", "action", "target_type", "target_label", "account_id"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "action", "target_label", "account_id"]
    date_hierarchy = "at"

    def get_readonly_fields(self, request: HttpRequest, obj: AuditEvent | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
