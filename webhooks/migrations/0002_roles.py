from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    roles.grant(
        apps,
        operator=["webhooks.view_inboundevent"],
        admin=["webhooks.reprocess_inboundevent"],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("accounts", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
