"""Every answer carries a strict Content-Security-Policy: no inline script or style, no framing."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/", "/login/", "/accounts/", "/deletions/", "/breakers/", "/audit/"]
)
def test_every_page_has_a_strict_content_security_policy(operator_client, path):
    response = operator_client.get(path)

    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_pages_have_no_inline_script_or_handler(operator_client):
    for path in ("/", "/deletions/", "/breakers/", "/repositories/", "/audit/"):
        html = operator_client.get(path).content.decode()
        assert "<script>" not in html and " onclick=" not in html and " style=" not in html
