from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    roles.grant(
        apps,
        viewer=["accounts.view_awsaccount", "audit.view_auditevent"],
        operator=["accounts.verify_awsaccount"],
        admin=[
            "accounts.add_awsaccount",
            "accounts.change_awsaccount",
            "auth.view_user",
            "auth.add_user",
            "auth.change_user",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
