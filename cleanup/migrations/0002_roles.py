from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    roles.grant(
        apps,
        viewer=[
            "cleanup.view_repository",
            "cleanup.view_image",
            "cleanup.view_deletioncheck",
            "cleanup.view_usagesnapshot",
        ],
        operator=[
            "cleanup.approve_deletioncheck",
            "cleanup.protect_image",
            "cleanup.optin_repository",
        ],
        admin=[
            "cleanup.edit_policy_repository",
            "cleanup.change_repository",
            "cleanup.change_registrysettings",
            "cleanup.add_registrysettings",
            "cleanup.view_registrysettings",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("cleanup", "0001_initial"),
        ("accounts", "0002_roles"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
