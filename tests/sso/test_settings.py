"""The single sign-on, log and metrics settings are strict: a bad value stops start-up naming it."""

import pytest

from tests.test_settings import PRODUCTION, manage

OIDC = {
    "OIDC_RP_CLIENT_ID": "platform-console",
    "OIDC_RP_CLIENT_SECRET": "secret",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.com/jwks",
}


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"LOCAL_LOGIN": "false"}, "LOCAL_LOGIN"),
        ({**OIDC, "OIDC_OP_JWKS_ENDPOINT": ""}, "OIDC_OP_JWKS_ENDPOINT"),
        (
            {**OIDC, "OIDC_OP_TOKEN_ENDPOINT": "http://idp.example.com/token"},
            "OIDC_OP_TOKEN_ENDPOINT",
        ),
        ({**OIDC, "OIDC_GROUP_MAP": "console-ops=superhero"}, "OIDC_GROUP_MAP"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    ],
)
def test_a_bad_value_stops_start_up_naming_it(environment, named):
    result = manage("check", **PRODUCTION, **environment)
    assert result.returncode != 0
    assert named in result.stderr


def test_sso_only_with_json_logs_and_metrics_passes_the_deploy_check():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        **OIDC,
        LOCAL_LOGIN="false",
        LOG_FORMAT="json",
        METRICS_TOKEN="a-long-enough-metrics-token",
    )
    assert result.returncode == 0, result.stderr
