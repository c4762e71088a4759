"""The three roles and the helper data migrations use to give them permissions.

Roles nest: what a viewer may do an operator may do, and what an operator may do an admin may do.
Each app's data migration grants its own permissions, for example::

    def forwards(apps, schema_editor):
        roles.grant(apps, viewer=["cleanup.view_image"], operator=["cleanup.approve_deletioncheck"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.apps.registry import Apps

ROLES = ["viewer", "operator", "admin"]
NO_ROLE = "none"
# What the Users page offers: exactly one role, or none (signed in, but sees nothing).
ROLE_CHOICES = [(role, role) for role in [*ROLES, NO_ROLE]]


def grant(
    apps: Apps,
    *,
    viewer: Sequence[str] = (),
    operator: Sequence[str] = (),
    admin: Sequence[str] = (),
) -> None:
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; create them now so they can be granted.
    for app_config in apps.get_app_configs():
        app_config.models_module = True  # type: ignore[assignment]  # create_permissions only asks whether it is set
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    wanted = {"viewer": list(viewer), "operator": list(viewer) + list(operator)}
    wanted["admin"] = wanted["operator"] + list(admin)
    for role, names in wanted.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".")
            permission = permission_model.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)
