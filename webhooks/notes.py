"""Inbox notes and errors in words. Handlers write short technical notes (``malformed alarm state
change: KeyError 'timestamp'``); the inbox shows what they mean ("the alarm event has no
timestamp field") and keeps the original in a ``title`` for searching."""

from __future__ import annotations

import re

# (pattern over the whole note, what it means). The first match wins; a note that matches none
# is shown as it is (handlers' own notes are already sentences).
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"malformed alarm state change: KeyError '(?P<field>[^']+)'"),
        "the alarm event has no {field} field",
    ),
    (
        re.compile(r"malformed alarm state change: ValueError timestamp without a time zone.*"),
        "the alarm event's time has no time zone",
    ),
    (
        re.compile(r"malformed alarm state change: ValueError Invalid isoformat string: (?P<v>.*)"),
        "the alarm event's time is not a date and time: {v}",
    ),
    (
        re.compile(r"malformed alarm state change: TypeError .*"),
        "a field of the alarm event has the wrong type",
    ),
    (
        re.compile(r"malformed alarm state change: (?P<rest>.*)"),
        "the alarm event could not be read ({rest})",
    ),
    (re.compile(r"no handler for kind (?P<kind>\S+)"), "the console does not act on {kind} events"),
    (
        re.compile(r"task definition status (?P<status>\S+) is not INACTIVE"),
        "the task definition is {status}, not INACTIVE: nothing to clean up",
    ),
    (
        re.compile(r"(?:attempt \d+[:,] )?(?:giving up: )?KeyError: '(?P<field>[^']+)'.*"),
        "the event has no {field} field",
    ),
    (
        re.compile(r"(?:attempt \d+[:,] )?(?:giving up: )?(?P<kind>[A-Za-z]+Error): (?P<text>.+)"),
        "the handler failed: {text}",
    ),
]


def in_words(note: str) -> str:
    text = (note or "").strip()
    for pattern, words in PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return words.format(**match.groupdict())
    return text
