"""The periodic tasks of the booking app, as django-q2 schedules (created once; staff may change
their cadence in the admin afterwards)."""

from django.conf import settings
from django.db import migrations

SCHEDULES = [
    ("booking: sync external calendars", "booking.tasks.external_calendars_sync", lambda: settings.EXTERNAL_CALENDAR_SYNC_MINUTES),
    ("booking: expire holds", "booking.tasks.holds_expire", lambda: 1),
]


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.get_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes(), "repeats": -1}
        )


def remove(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
