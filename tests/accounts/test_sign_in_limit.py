"""Failed sign-ins are limited per user name and per address (django-axes): after ten failures
within fifteen minutes the next sign-in is refused even with the right password, the page says
why, and the audit history has it."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.db.models import F
from django.test import Client, RequestFactory

from accounts.signin import client_ip, is_not_a_password_attempt
from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.test_settings import manage

pytestmark = pytest.mark.django_db
LOCKED = "Too many failed sign-ins for this user name or from this address."


def sign_in(username: str, password: str, address: str = "198.51.100.7", client=None):
    client = client or Client(REMOTE_ADDR=address)
    return client.post("/login/", {"username": username, "password": password})


def fail(times: int, username: str = "oscar", **kwargs) -> None:
    for _ in range(times):
        assert sign_in(username, "wrong-password", **kwargs).status_code in {200, 429}


def is_signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_the_eleventh_sign_in_is_refused_even_with_the_right_password(operator_user):
    fail(10)

    response = sign_in("oscar", PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED in page
    assert "refused for 15 minutes" in page
    assert 'name="username"' in page and 'value="oscar"' in page  # the sign-in page, not a bare 403
    assert not is_signed_in(response)
    assert Client(REMOTE_ADDR="198.51.100.7").get("/").status_code == 302


def test_nine_failures_do_not_lock_anyone_out(operator_user):
    fail(9)
    assert is_signed_in(sign_in("oscar", PASSWORD))


def test_the_lockout_is_audited(operator_user):
    fail(10)
    sign_in("oscar", PASSWORD)

    locked = AuditEvent.objects.filter(action="auth.locked_out").order_by("id")
    assert [event.details["failures"] for event in locked] == [10, 11]
    first = locked.first()
    assert (first.actor, first.target_label) == ("oscar", "oscar")
    assert first.details == {"ip": "198.51.100.7", "failures": 10, "limit": 10}
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 11
    assert not AuditEvent.objects.filter(action="auth.logged_in").exists()


def test_the_limit_is_per_user_name_whatever_the_address(operator_user):
    for number in range(10):
        fail(1, address=f"203.0.113.{number}")
    assert sign_in("oscar", PASSWORD, address="192.0.2.99").status_code == 429


def test_the_limit_is_per_address_whatever_the_user_name(operator_user):
    for number in range(10):
        fail(1, username=f"guess-{number}")
    assert sign_in("oscar", PASSWORD).status_code == 429
    assert is_signed_in(sign_in("oscar", PASSWORD, address="192.0.2.99"))


def test_the_lock_ends_when_the_window_has_passed(operator_user):
    fail(10)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert is_signed_in(sign_in("oscar", PASSWORD))


def test_the_limit_and_window_come_from_the_environment(operator_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(hours=1)
    fail(3)
    response = sign_in("oscar", PASSWORD)
    assert response.status_code == 429
    assert "refused for 60 minutes" in response.content.decode()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOGIN_FAILURE_LIMIT", "0", "LOGIN_FAILURE_LIMIT='0' is invalid"),
        (
            "LOGIN_FAILURE_WINDOW",
            "10s",
            "LOGIN_FAILURE_WINDOW='10s' is invalid: expected at least 1m",
        ),
        ("LOGIN_FAILURE_WINDOW", "soon", "LOGIN_FAILURE_WINDOW='soon' is invalid"),
        ("TRUSTED_PROXY_COUNT", "-1", "TRUSTED_PROXY_COUNT='-1' is invalid"),
    ],
)
def test_a_malformed_setting_stops_start_up(variable, value, message):
    result = manage("check", **{variable: value, "DEBUG": "true"})
    assert result.returncode != 0
    assert message in result.stderr


# --- Where a request comes from ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),  # no proxy trusted: the header is the client's to write
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # the left entry is the client's invention
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),
        (1, "", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_each_client_is_counted_on_its_own(operator_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for number in range(10):
        client = Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.66")
        client.post("/login/", {"username": f"guess-{number}", "password": "x"})

    attacker = Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.66")
    colleague = Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert sign_in("oscar", PASSWORD, client=attacker).status_code == 429
    assert is_signed_in(sign_in("oscar", PASSWORD, client=colleague))
    assert AuditEvent.objects.filter(action="auth.login_failed").first().details == {
        "ip": "203.0.113.66"
    }


# --- What the limit leaves alone -----------------------------------------------------------------


def test_a_single_sign_on_callback_is_not_a_password_attempt():
    callback = RequestFactory().get("/oidc/callback/", {"code": "c", "state": "s"})
    assert is_not_a_password_attempt(callback, {}) is True
    assert is_not_a_password_attempt(callback, {"username": "oscar"}) is False


def test_signing_in_without_a_request_still_works(operator_user):
    assert authenticate(username="oscar", password=PASSWORD) == operator_user


def test_force_login_still_works(operator_client):
    assert operator_client.get("/").status_code == 200
