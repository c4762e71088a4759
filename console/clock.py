"""The one clock of the console. Actions take ``now`` as a parameter defaulting to this, so
tests pass a time instead of sleeping or depending on the wall clock."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
