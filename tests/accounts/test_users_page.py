"""The Users page: admins invite, change roles, deactivate and reactivate, within bounds (never a
superuser or staff flag, never a permission, never a superuser's account, never themself), and
every change is one audit event naming them."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db
INVITE = {"username": "nina", "email": "nina@example.com", "role": "operator"}


def roles(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def user_events():
    return AuditEvent.objects.filter(action__startswith="user.")


def snapshot() -> list[tuple]:
    """Every user with their flags, groups and permissions: what no refused request may change."""
    return [
        (
            user.username,
            user.email,
            user.is_active,
            user.is_staff,
            user.is_superuser,
            sorted(user.groups.values_list("name", flat=True)),
            sorted(user.user_permissions.values_list("codename", flat=True)),
        )
        for user in User.objects.order_by("username")
    ]


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "a-long-random-password")


# --- Who may -------------------------------------------------------------------------------------


def test_it_lists_users_with_their_role_to_an_admin(admin_client, viewer_user, root):
    page = admin_client.get("/users/").content.decode()

    assert f'id="user-{viewer_user.pk}"' in page
    assert "superuser" in page and "managed with manage.py" in page
    assert ">Users</a>" in admin_client.get("/").content.decode()


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client", "outsider_client"])
def test_it_refuses_the_page_and_the_link_to_other_roles(persona, request, admin_user):
    client = request.getfixturevalue(persona)
    for url in ("/users/", "/users/invite/"):
        response = client.get(url)
        assert response.status_code == 403
        assert f'id="user-{admin_user.pk}"' not in response.content.decode()
    assert ">Users</a>" not in client.get("/audit/").content.decode()


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client"])
def test_a_viewer_or_operator_posting_gets_403_and_nothing_changes(persona, request, admin_user):
    client = request.getfixturevalue(persona)
    target = make_user("tom", "viewer")
    before, events = snapshot(), user_events().count()

    answers = [
        client.post("/users/invite/", INVITE).status_code,
        client.post(f"/users/{target.pk}/role/", {"role": "admin"}).status_code,
        client.post(f"/users/{admin_user.pk}/role/", {"role": "none"}).status_code,
        client.post(f"/users/{target.pk}/deactivate/").status_code,
        client.post(f"/users/{admin_user.pk}/deactivate/").status_code,
    ]

    assert answers == [403] * 5
    assert snapshot() == before
    assert user_events().count() == events


# --- Invite --------------------------------------------------------------------------------------


def test_it_invites_a_user_shows_the_password_once_and_audits_it(admin_client):
    response = admin_client.post("/users/invite/", INVITE)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    nina = User.objects.get(username="nina")
    password = response.context["password"]
    assert f'id="one-time-password">{password}<' in response.content.decode()
    assert authenticate(username="nina", password=password) == nina
    assert (nina.email, roles(nina), nina.is_staff, nina.is_superuser) == (
        "nina@example.com",
        {"operator"},
        False,
        False,
    )
    event = user_events().get(action="user.invited")
    assert (event.actor, event.target_id) == ("ada", str(nina.pk))
    assert event.details == {
        "email": "nina@example.com",
        "role": "operator",
        "sign_in": "one-time password",
    }
    assert password not in str(event.details)
    assert password not in admin_client.get("/users/").content.decode()


def test_with_single_sign_on_an_invited_user_gets_no_password(admin_client, settings):
    settings.OIDC_ENABLED = True

    response = admin_client.post("/users/invite/", INVITE)

    assert "single sign-on" in response.content.decode()
    assert User.objects.get(username="nina").has_usable_password() is False
    assert user_events().get(action="user.invited").details["sign_in"] == "single sign-on"


def test_it_never_makes_staff_superusers_or_grants_permissions_whatever_is_posted(admin_client):
    permission = Permission.objects.get(codename="change_user")
    admin_client.post(
        "/users/invite/",
        {
            **INVITE,
            "is_superuser": "on",
            "is_staff": "on",
            "user_permissions": [permission.pk],
            "groups": [Group.objects.get(name="admin").pk],
        },
    )

    nina = User.objects.get(username="nina")
    assert (nina.is_superuser, nina.is_staff) == (False, False)
    assert not nina.user_permissions.exists()
    assert roles(nina) == {"operator"}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "vera"}, "A user with this name already exists."),
        ({"username": "VERA"}, "A user with this name already exists."),
        ({"email": "VERA@example.com"}, "A user with this e-mail address already exists."),
        ({"username": "nina smith"}, "Enter a valid username."),
        ({"username": "n\u0456na"}, "Enter a valid username."),  # a Cyrillic i: looks like nina
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"email": ""}, "This field is required."),
        ({"role": "superuser"}, "Select a valid choice."),
    ],
)
def test_the_invite_form_says_what_is_wrong_and_writes_nothing(admin_client, form, message):
    User.objects.create_user("vera", "vera@example.com")
    before, events = snapshot(), user_events().count()

    response = admin_client.post("/users/invite/", {**INVITE, **form})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert snapshot() == before
    assert user_events().count() == events


# --- Change role ---------------------------------------------------------------------------------


def test_it_puts_a_user_in_exactly_one_role_and_leaves_other_groups(admin_client):
    tom = make_user("tom", "viewer")
    tom.groups.add(Group.objects.get(name="operator"), Group.objects.create(name="on-call"))

    response = admin_client.post(f"/users/{tom.pk}/role/", {"role": "admin"})

    assert response.status_code == 302
    assert roles(tom) == {"admin", "on-call"}
    event = user_events().get(action="user.role_changed")
    assert (event.actor, event.target_label) == ("ada", "tom")
    assert event.details == {"from": "viewer+operator", "to": "admin"}
    assert not user_events().filter(action__startswith="user.groups_").filter(actor="ada")


def test_none_takes_every_role_away(admin_client):
    tom = make_user("tom", "operator")
    admin_client.post(f"/users/{tom.pk}/role/", {"role": "none"})
    assert roles(tom) == set()
    assert user_events().get(action="user.role_changed").details == {
        "from": "operator",
        "to": "none",
    }


def test_with_htmx_it_answers_the_updated_row(admin_client):
    tom = make_user("tom", "viewer")

    response = admin_client.post(
        f"/users/{tom.pk}/role/", {"role": "operator"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith(f'<tr id="user-{tom.pk}"')
    assert '<option value="operator" selected>' in body


def test_the_same_role_again_changes_nothing(admin_client):
    tom = make_user("tom", "viewer")
    response = admin_client.post(f"/users/{tom.pk}/role/", {"role": "viewer"}, follow=True)
    assert "Nothing changed." in response.content.decode()
    assert not user_events().filter(action="user.role_changed").exists()


@pytest.mark.parametrize("role", ["superuser", "staff", "on-call", "", "admin,viewer"])
def test_there_is_no_way_to_a_group_that_is_not_a_role(admin_client, role):
    Group.objects.create(name="on-call")
    tom = make_user("tom", "viewer")
    before = snapshot()

    response = admin_client.post(f"/users/{tom.pk}/role/", {"role": role})

    assert response.status_code == 400
    assert snapshot() == before
    assert not user_events().filter(action="user.role_changed").exists()


# --- Deactivate, reactivate ----------------------------------------------------------------------


def test_deactivating_signs_the_user_out_at_once_and_is_audited(admin_client, viewer_user):
    vera = Client()
    assert vera.post("/login/", {"username": "vera", "password": PASSWORD}).status_code == 302
    assert vera.get("/audit/").status_code == 200

    response = admin_client.post(f"/users/{viewer_user.pk}/deactivate/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "deactivated" in response.content.decode()
    viewer_user.refresh_from_db()
    assert viewer_user.is_active is False
    assert vera.get("/audit/").status_code == 302
    assert vera.post("/login/", {"username": "vera", "password": PASSWORD}).status_code == 200
    event = user_events().get(action="user.deactivated")
    assert (event.actor, event.target_label, event.details) == (
        "ada",
        "vera",
        {"sessions_ended": 1},
    )


def test_reactivating_lets_the_user_sign_in_again(admin_client, viewer_user):
    admin_client.post(f"/users/{viewer_user.pk}/deactivate/")

    response = admin_client.post(f"/users/{viewer_user.pk}/reactivate/", follow=True)

    assert "vera can sign in again." in response.content.decode()
    assert Client().post("/login/", {"username": "vera", "password": PASSWORD}).status_code == 302
    assert [e.action for e in user_events().filter(actor="ada").order_by("id")] == [
        "user.deactivated",
        "user.reactivated",
    ]


def test_an_admin_cannot_deactivate_themself_or_change_their_own_role(admin_client, admin_user):
    before, events = snapshot(), user_events().count()

    assert admin_client.post(f"/users/{admin_user.pk}/deactivate/").status_code == 403
    assert admin_client.post(f"/users/{admin_user.pk}/role/", {"role": "viewer"}).status_code == 403

    assert snapshot() == before
    assert user_events().count() == events
    row = admin_client.get("/users/").content.decode().split(f'id="user-{admin_user.pk}"')[1]
    assert "Deactivate" not in row.split("</tr>")[0]


def test_an_admin_never_touches_a_superuser(admin_client, root):
    before, events = snapshot(), user_events().count()

    answers = [
        admin_client.post(f"/users/{root.pk}/role/", {"role": "viewer"}).status_code,
        admin_client.post(f"/users/{root.pk}/deactivate/").status_code,
    ]

    assert answers == [403, 403]
    assert snapshot() == before
    assert user_events().count() == events
    row = admin_client.get("/users/").content.decode().split(f'id="user-{root.pk}"')[1]
    assert "<form" not in row.split("</tr>")[0]
