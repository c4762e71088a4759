"""manage.py notify: the watchdog outside the worker, the pass and a test by hand."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from notify.models import Delivery


def test_the_watchdog_notifies_a_silent_worker_once(channel, receiver, capsys):
    call_command("notify", "watchdog", "--json")  # no worker ever beat in this database
    first = json.loads(capsys.readouterr().out)
    call_command("notify", "watchdog", "--json")
    second = json.loads(capsys.readouterr().out)

    assert len(first["notified"]) == 1 and second["notified"] == []
    assert receiver.titles() == ["The console's worker is silent"]


def test_a_test_from_the_command_line_is_sent_and_recorded(channel, receiver, capsys):
    call_command("notify", "test", "ops")

    assert "status: sent" in capsys.readouterr().out
    assert receiver.titles() == ["Test from the platform console"]
    assert Delivery.objects.get().status == "sent"


def test_a_test_to_an_unknown_channel_fails_clearly(db):
    with pytest.raises(CommandError, match="no channel named 'nope'"):
        call_command("notify", "test", "nope")
