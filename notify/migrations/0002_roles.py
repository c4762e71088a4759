from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    # Channels hold secrets and reach the whole team: admins only, reading included.
    roles.grant(
        apps,
        admin=[
            "notify.view_channel",
            "notify.add_channel",
            "notify.change_channel",
            "notify.delete_channel",
            "notify.test_channel",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("notify", "0001_channels_and_deliveries"),
        ("accounts", "0002_roles"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
