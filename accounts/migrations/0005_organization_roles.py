from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    # Connecting, editing and disconnecting the organization are the admins' (the Organizations
    # role sees every account of the company); everyone who sees accounts sees where they came from.
    roles.grant(
        apps,
        viewer=["accounts.view_organization"],
        admin=[
            "accounts.add_organization",
            "accounts.change_organization",
            "accounts.delete_organization",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_organization")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
