from django.urls import path

import console.converters  # noqa: F401  (registers <id:...> and <account:...>)
from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("add/", views.account_add, name="add"),
    path("organization/", views.organization, name="organization"),
    path("organization/disconnect/", views.organization_disconnect, name="organization-disconnect"),
    path("organization/sync/", views.organization_sync, name="organization-sync"),
    path("<account:account_id>/edit/", views.account_edit, name="edit"),
    path("<account:account_id>/disable/", views.account_disable, name="disable"),
    path("<account:account_id>/verify/", views.account_verify, name="verify"),
]
