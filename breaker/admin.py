from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from breaker.models import Breaker, BreakerTransition, Probe

if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
    ReadOnlyAdminBase = admin.ModelAdmin[Model]
else:
    ReadOnlyAdminBase = admin.ModelAdmin


class ReadOnlyAdmin(ReadOnlyAdminBase):
    """Read-only here: changes go through the console's pages or CLI so they are audited and
    the event source mapping follows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Breaker)
class BreakerAdmin(ReadOnlyAdmin):
    list_display = ["name", "state", "mode", "account", "region", "function_name", "mapping_state"]
    list_filter = ["state", "mode"]
    search_fields = ["name", "function_name", "mapping_uuid"]


@admin.register(BreakerTransition)
class BreakerTransitionAdmin(ReadOnlyAdmin):
    list_display = ["at", "breaker", "from_state", "to_state", "cause", "actor"]
    list_filter = ["cause"]


@admin.register(Probe)
class ProbeAdmin(ReadOnlyAdmin):
    list_display = ["at", "breaker", "outcome", "duration_ms", "message_id"]
    list_filter = ["outcome"]
