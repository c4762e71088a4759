"""The pure parts of SNS verification."""

from __future__ import annotations

import pytest

from webhooks import sns


def test_the_string_to_sign_of_a_notification_includes_the_subject_when_present():
    message = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:t",
        "Subject": "hello",
        "Message": "body",
        "Timestamp": "2026-11-27T10:15:02.123Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }

    assert sns.string_to_sign(message) == (
        "Message\nbody\nMessageId\nm-1\nSubject\nhello\nTimestamp\n2026-11-27T10:15:02.123Z\n"
        "TopicArn\narn:aws:sns:eu-west-1:111122223333:t\nType\nNotification\n"
    )
    without_subject = {key: value for key, value in message.items() if key != "Subject"}
    assert "Subject" not in sns.string_to_sign(without_subject)


def test_the_string_to_sign_of_a_confirmation_includes_the_subscribe_url_and_token():
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m-2",
        "Token": "tok",
        "TopicArn": "arn:t",
        "Message": "confirm",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2026-11-27T10:15:02.123Z",
    }

    assert sns.string_to_sign(message) == (
        "Message\nconfirm\nMessageId\nm-2\n"
        "SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\n"
        "Timestamp\n2026-11-27T10:15:02.123Z\nToken\ntok\nTopicArn\narn:t\nType\nSubscriptionConfirmation\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/x.pem",
    ],
)
def test_it_accepts_certificate_urls_on_sns_hosts(url, sns_signer, client, db):
    sns_signer.cert_url = url
    message = sns_signer.notification("hello")

    response = sns_signer.post(client, message)

    assert response.status_code == 202  # verified with the certificate fetched from there
    assert sns_signer.fetched == [url]


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com/x.pem.txt",
        "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://evil.com/sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.com/x.pem",
        "https://sqs.eu-west-1.amazonaws.com/x.pem",
        "https://sns.EU_WEST.amazonaws.com/x.pem",
        "file:///etc/ssl/x.pem",
    ],
)
def test_it_refuses_other_certificate_urls(url):
    with pytest.raises(sns.VerificationFailed):
        sns.check_sns_url(url, what="SigningCertURL", pem=True)


def test_the_certificate_cache_is_bounded(monkeypatch):
    from tests.webhooks.signing import key_pair

    _, pem = key_pair()
    monkeypatch.setattr(sns, "fetch_certificate", lambda url: pem)
    sns.clear_cache()
    for number in range(sns.CACHE_SIZE + 10):
        sns.certificate(f"https://sns.eu-west-1.amazonaws.com/{number}.pem")

    assert len(sns._cache) == sns.CACHE_SIZE
    sns.clear_cache()
