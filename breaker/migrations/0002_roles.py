from django.db import migrations

from accounts import roles


def forwards(apps, schema_editor):
    roles.grant(
        apps,
        viewer=["breaker.view_breaker", "breaker.view_breakertransition", "breaker.view_probe"],
        operator=["breaker.trip_breaker", "breaker.probe_breaker", "breaker.manage_breaker"],
        admin=["breaker.add_breaker", "breaker.change_breaker"],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("breaker", "0001_initial"),
        ("accounts", "0002_roles"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
