"""A channel's URL is its secret (a Slack token, a PagerDuty key, a mail password): it is kept
encrypted in the database with a key derived from ``SECRET_KEY``, so a copy of the database alone
does not hand out the team's channels. ``SECRET_KEY_FALLBACKS`` still decrypt after a rotation."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_PURPOSE = b"notify.channel-url"


class UndecryptableUrl(Exception):
    pass


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(_PURPOSE + b"\x00" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(key) for key in keys])


def encrypt(url: str) -> str:
    return _keys().encrypt(url.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableUrl(
            "the channel's URL cannot be decrypted (SECRET_KEY changed without "
            "SECRET_KEY_FALLBACKS): enter the URL again"
        ) from None


def fingerprint(url: str) -> str:
    """Stable identity of an environment URL, without keeping the URL itself in clear."""
    return hashlib.sha256(_PURPOSE + b"\x00" + url.encode()).hexdigest()
