from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("add/", views.account_add, name="add"),
    path("<str:account_id>/edit/", views.account_edit, name="edit"),
    path("<str:account_id>/disable/", views.account_disable, name="disable"),
    path("<str:account_id>/verify/", views.account_verify, name="verify"),
]
