"""Build SNS messages signed like SNS signs them, with a key and certificate made here.

Other apps' tests use it too (alarm notifications through the SNS door)::

    from tests.webhooks.signing import sns_signer  # noqa: F401  (the fixture)

    def test_x(client, sns_signer):  # the fixture also allows its topic in SNS_TOPIC_ARNS
        message = sns_signer.notification({"AlarmName": ..., "NewStateValue": "ALARM", ...})
        response = sns_signer.post(client, message)  # on-commit processing has run on return
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import TestCase

from console import clock
from webhooks import sns

TOPIC_ARN = "arn:aws:sns:eu-west-1:111122223333:console-events"
CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
)
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC_ARN}&Token=2336412f37fb687f5d51e6e2425c464de12884"
)
UNSUBSCRIBE_URL = "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


@cache
def key_pair(name: str = "sns") -> tuple[rsa.RSAPrivateKey, bytes]:
    """A private key and a self-signed PEM certificate for it (made once per test run)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.amazonaws.com")])
    now = datetime.now().astimezone()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class SnsSigner:
    key: rsa.RSAPrivateKey
    certificate_pem: bytes
    cert_url: str = CERT_URL
    topic_arn: str = TOPIC_ARN
    fetched: list[str] = field(default_factory=list)

    def sign(
        self, message: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, Any]:
        """Set ``Signature`` over the message's string to sign (with another key if given)."""
        digest = HASHES[message["SignatureVersion"]]()
        signature = (key or self.key).sign(
            sns.string_to_sign(message).encode(), padding.PKCS1v15(), digest
        )
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def _base(
        self, kind: str, *, version: str, at: datetime | None, message_id: str | None
    ) -> dict:
        return {
            "Type": kind,
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": self.topic_arn,
            "Timestamp": timestamp(at or clock.now()),
            "SignatureVersion": version,
            "SigningCertURL": self.cert_url,
        }

    def notification(
        self,
        message: str | dict,
        *,
        subject: str | None = None,
        version: str = "1",
        at: datetime | None = None,
        message_id: str | None = None,
        sign: bool = True,
    ) -> dict[str, Any]:
        body = self._base("Notification", version=version, at=at, message_id=message_id)
        body["Message"] = message if isinstance(message, str) else json.dumps(message)
        if subject is not None:
            body["Subject"] = subject
        body["UnsubscribeURL"] = UNSUBSCRIBE_URL
        return self.sign(body) if sign else body

    def subscription_confirmation(
        self, *, version: str = "1", message_id: str | None = None
    ) -> dict:
        body = self._base(
            "SubscriptionConfirmation", version=version, at=None, message_id=message_id
        )
        body.update(
            Message=f"You have chosen to subscribe to the topic {self.topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            Token="2336412f37fb687f5d51e6e2425c464de12884",
            SubscribeURL=SUBSCRIBE_URL,
        )
        return self.sign(body)

    def unsubscribe_confirmation(self, *, version: str = "1") -> dict:
        body = self._base("UnsubscribeConfirmation", version=version, at=None, message_id=None)
        body.update(
            Message=f"You have chosen to deactivate subscription for {self.topic_arn}.",
            Token="2336412f37fb687f5d51e6e2425c464de12885",
            SubscribeURL=SUBSCRIBE_URL,
        )
        return self.sign(body)

    @staticmethod
    def body(message: dict[str, Any]) -> str:
        return json.dumps(message)

    @staticmethod
    def headers(message: dict[str, Any]) -> dict[str, str]:
        return {
            "x-amz-sns-message-type": message.get("Type", ""),
            "x-amz-sns-message-id": message.get("MessageId", ""),
            "x-amz-sns-topic-arn": message.get("TopicArn", ""),
        }

    def post(self, client, message: dict[str, Any]):
        """POST like SNS does; on-commit work (the processing task) runs before this returns."""
        with after_commit():
            return client.post(
                "/webhooks/sns/",
                self.body(message),
                content_type="text/plain; charset=UTF-8",
                headers=self.headers(message),
            )


def after_commit():
    """Run on-commit callbacks at the end of the block, as a real commit would (tests run inside
    a transaction that never commits)."""
    return TestCase.captureOnCommitCallbacks(execute=True)


@pytest.fixture
def sns_signer(monkeypatch, settings) -> SnsSigner:
    """A signer whose certificate the endpoint fetches (through an injected fetcher) from
    ``CERT_URL``; the topic is allowed. ``signer.fetched`` lists the URLs fetched."""
    key, pem = key_pair()
    signer = SnsSigner(key=key, certificate_pem=pem)

    def fetch_certificate(url: str) -> bytes:
        signer.fetched.append(url)
        if url != signer.cert_url:
            raise AssertionError(f"the endpoint fetched an unexpected certificate URL {url}")
        return signer.certificate_pem

    sns.clear_cache()
    monkeypatch.setattr(sns, "fetch_certificate", fetch_certificate)
    settings.SNS_TOPIC_ARNS = [signer.topic_arn]
    yield signer
    sns.clear_cache()
