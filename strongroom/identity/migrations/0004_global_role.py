# The admin flag becomes a global role (admin, auditor, member); admins stay admins.

from django.db import migrations, models


def admins_keep_their_role(apps, schema_editor):
    User = apps.get_model("identity", "User")
    User.objects.filter(is_admin=True).update(global_role="admin")


def back_to_the_flag(apps, schema_editor):
    User = apps.get_model("identity", "User")
    User.objects.filter(global_role="admin").update(is_admin=True)


class Migration(migrations.Migration):

    dependencies = [
        ("identity", "0003_token_scopes"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="global_role",
            field=models.CharField(default="member", max_length=16),
        ),
        migrations.RunPython(admins_keep_their_role, back_to_the_flag),
        migrations.RemoveField(
            model_name="user",
            name="is_admin",
        ),
    ]
