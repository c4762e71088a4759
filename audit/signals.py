from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

import audit


@receiver(user_login_failed)
def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    username = (credentials or {}).get("username", "")
    audit.record(
        actor=username or "anonymous",
        action="auth.login_failed",
        target_type="user",
        target_label=username,
        details={"ip": _client_ip(request)},
    )


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs) -> None:
    audit.record(
        actor=user.get_username(),
        action="auth.logged_in",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        details={"ip": _client_ip(request)},
    )


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""
