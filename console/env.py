"""Strict readers for settings that come from the environment.

django-environ parses; these wrappers make a malformed value stop start-up with a message that
names the variable (``DEBUG=banana`` must not silently mean ``False``).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any, overload
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DB_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql", "psql"}


class SettingError(ImproperlyConfigured):
    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"Setting {name}={value!r} is invalid: {expected}.")


@overload
def raw(name: str, default: str) -> str: ...
@overload
def raw(name: str, default: None = None) -> str | None: ...
def raw(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def required(name: str, why: str) -> str:
    value = raw(name)
    if value is None:
        raise ImproperlyConfigured(f"Setting {name} is required {why}.")
    return value


def boolean(name: str, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SettingError(name, value, "expected true or false")


def integer(name: str, default: int, *, minimum: int = 0) -> int:
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingError(name, value, "expected a whole number") from None
    if number < minimum:
        raise SettingError(name, value, f"expected a number of at least {minimum}")
    return number


def decimal_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingError(name, value, "expected a number such as 0.10") from None
    if number < minimum:
        raise SettingError(name, value, f"expected a number of at least {minimum}")
    return number


def string_list(name: str, default: list[str] | None = None) -> list[str]:
    value = raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_duration(text: str) -> timedelta:
    """``24h``, ``90m``, ``30s``, ``7d`` -> timedelta; raises ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 24h, 90m or 0s")
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


def duration(name: str, default: str) -> timedelta:
    value = raw(name, default)
    try:
        return parse_duration(value)
    except ValueError:
        raise SettingError(name, value, "expected a duration such as 24h, 90m or 0s") from None


def key_value(name: str, default: str) -> tuple[str, str]:
    value = raw(name, default)
    key, sep, tag_value = value.partition("=")
    if not sep or not key.strip() or not tag_value.strip():
        raise SettingError(name, value, "expected KEY=VALUE, for example ecr-cleanup=enabled")
    return key.strip(), tag_value.strip()


def database(name: str, default: str) -> dict[str, Any]:
    value = raw(name, default)
    scheme = urlsplit(value).scheme
    if scheme not in _DB_SCHEMES:
        raise SettingError(
            name,
            value,
            "expected a sqlite:/// or postgres:// URL (for example sqlite:///data/console.sqlite3)",
        )
    try:
        config: dict[str, Any] = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several kinds on malformed URLs
        raise SettingError(name, value, str(exc)) from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise SettingError(name, value, "the URL names no database")
    return config


def redis_url(name: str) -> str | None:
    value = raw(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss", "unix"} or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise SettingError(name, value, "expected a redis://host:port/db URL")
    return value
