"""The Users page, at /users/ (the console's user management; Django's admin is for superusers)."""

from django.urls import path

import console.converters  # noqa: F401  (registers <id:...> and <account:...>)
from accounts import views

app_name = "users"
urlpatterns = [
    path("", views.user_list, name="list"),
    path("invite/", views.user_invite, name="invite"),
    path("<id:user_id>/role/", views.user_role, name="role"),
    path("<id:user_id>/deactivate/", views.user_deactivate, name="deactivate"),
    path("<id:user_id>/reactivate/", views.user_reactivate, name="reactivate"),
]
