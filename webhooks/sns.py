"""Verification of SNS HTTP(S) messages, as pure functions plus two small injectable fetchers.

Every message is checked before anything is stored: the message type and its fields, the topic
against the allow-list, the age of the timestamp, the signing certificate URL, and the RSA
signature over the canonical string to sign. ``fetch_certificate`` and ``confirm_subscription``
are the only network calls; tests replace them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_AGE = timedelta(hours=1)
FETCH_TIMEOUT = 5  # seconds; SNS and API destinations give up on us after a few seconds
CACHE_SIZE = 32


class MalformedMessage(ValueError):
    """The body is not an SNS message (answered with 400)."""


class VerificationFailed(Exception):
    """The message is not provably from SNS for an allowed topic (answered with 403)."""


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched now (answered with 503 so SNS retries)."""


def parse(body: str, header_type: str | None = None) -> dict[str, Any]:
    """Parse and check the shape of an SNS message; raises ``MalformedMessage`` naming the fault."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise MalformedMessage(f"body is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("body must be a JSON object (an SNS message)")
    message_type = message.get("Type")
    if message_type not in MESSAGE_TYPES:
        raise MalformedMessage(
            f"Type must be one of {', '.join(MESSAGE_TYPES)}, not {message_type!r}"
        )
    if header_type and header_type != message_type:
        raise MalformedMessage(
            f"x-amz-sns-message-type header says {header_type!r}, the body Type {message_type!r}"
        )
    fields = NOTIFICATION_FIELDS if message_type == "Notification" else CONFIRMATION_FIELDS
    required = [name for name in fields if name != "Subject"]
    required += ["Signature", "SignatureVersion", "SigningCertURL"]
    missing = [name for name in required if not isinstance(message.get(name), str)]
    if missing:
        raise MalformedMessage(f"missing or non-string field(s): {', '.join(missing)}")
    if "Subject" in message and not isinstance(message["Subject"], (str, type(None))):
        raise MalformedMessage("Subject must be a string")
    if not message["MessageId"].strip():
        raise MalformedMessage("MessageId is empty")
    return message


def string_to_sign(message: dict[str, Any]) -> str:
    """The canonical ``Name\\nValue\\n`` string SNS signs, per message type; ``Subject`` is left
    out when the notification has none."""
    fields = NOTIFICATION_FIELDS if message.get("Type") == "Notification" else CONFIRMATION_FIELDS
    parts = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise MalformedMessage(f"missing field {name}")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts)


def check_sns_url(url: str, *, what: str, pem: bool = False) -> None:
    """An SNS URL we are willing to fetch: https, on an ``sns.<region>.amazonaws.com[.cn]`` host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise VerificationFailed(f"{what} {url!r} is not a valid URL") from None
    if parts.scheme != "https":
        raise VerificationFailed(f"{what} must use https: {url!r}")
    host = (parts.hostname or "").lower()
    if not SNS_HOST.match(host) or parts.username or parts.password or port not in (None, 443):
        raise VerificationFailed(f"{what} is not on an SNS host: {url!r}")
    if pem and not parts.path.endswith(".pem"):
        raise VerificationFailed(f"{what} must point to a .pem file: {url!r}")


def parse_timestamp(value: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VerificationFailed(f"Timestamp {value!r} is not an ISO 8601 time") from None
    if stamp.tzinfo is None:
        raise VerificationFailed(f"Timestamp {value!r} has no time zone")
    return stamp


def verify(message: dict[str, Any], *, allowed_topics: list[str], now: datetime) -> None:
    """Raise ``VerificationFailed`` unless the message is signed by SNS for an allowed topic and
    recent. Cheap checks come first so a forged message never makes us fetch anything."""
    if message["TopicArn"] not in allowed_topics:
        raise VerificationFailed(f"topic {message['TopicArn']} is not in SNS_TOPIC_ARNS")
    sent = parse_timestamp(message["Timestamp"])
    if now - sent > MAX_AGE:
        raise VerificationFailed(
            f"message is too old: sent {message['Timestamp']}, more than an hour ago"
        )
    if sent - now > MAX_AGE:
        raise VerificationFailed(f"message Timestamp {message['Timestamp']} is in the future")
    version = message["SignatureVersion"]
    if version not in HASHES:
        raise VerificationFailed(f"SignatureVersion {version!r} is not supported (1 or 2)")
    check_sns_url(message["SigningCertURL"], what="SigningCertURL", pem=True)
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed("Signature is not base64") from None
    public_key = certificate(message["SigningCertURL"]).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise VerificationFailed("signing certificate does not hold an RSA key")
    try:
        public_key.verify(
            signature,
            string_to_sign(message).encode(),
            padding.PKCS1v15(),
            HASHES[version](),
        )
    except InvalidSignature:
        raise VerificationFailed("signature does not match the message") from None


def fetch_certificate(url: str) -> bytes:
    """Download a signing certificate (PEM). Replaced in tests."""
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
    return response.content


def confirm_subscription(url: str) -> None:
    """Visit the SubscribeURL of a SubscriptionConfirmation. Replaced in tests."""
    check_sns_url(url, what="SubscribeURL")
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()


_cache: OrderedDict[str, x509.Certificate] = OrderedDict()
_cache_lock = threading.Lock()


def certificate(url: str) -> x509.Certificate:
    """The parsed certificate at ``url``, fetched once per process (bounded LRU cache)."""
    with _cache_lock:
        if url in _cache:
            _cache.move_to_end(url)
            return _cache[url]
    try:
        pem = fetch_certificate(url)
    except requests.RequestException as exc:
        raise CertificateUnavailable(f"could not fetch the signing certificate: {exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise VerificationFailed(f"{url} is not a PEM certificate") from None
    with _cache_lock:
        _cache[url] = cert
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return cert


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
