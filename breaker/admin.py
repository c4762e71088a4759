from django.contrib import admin

from breaker.models import Breaker, BreakerTransition, Probe


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only here: changes go through the console's pages or CLI so they are audited and
    the event source mapping follows them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
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
