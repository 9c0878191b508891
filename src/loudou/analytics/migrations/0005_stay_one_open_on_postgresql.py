"""The unique index behind the constraint "stay_one_open_per_opportunity" (one open stay per
deal), created again where it is missing.

On PostgreSQL, 0002_fewer_indexes dropped it: Django's AlterField, removing the opportunity foreign
key's own index, drops every index it finds on that column alone, and took the constraint's
partial unique index with it. SQLite kept it. `IF NOT EXISTS` makes this a no-op there."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0004_span_started_open_now"),
    ]

    operations = [
        migrations.RunSQL(
            'CREATE UNIQUE INDEX IF NOT EXISTS "stay_one_open_per_opportunity" '
            'ON "analytics_opportunitystay" ("opportunity_id") WHERE "exited_at" IS NULL',
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
