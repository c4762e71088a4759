"""The Notifications pages, at /notifications/ (admins only)."""

from django.urls import path

import console.converters  # noqa: F401  (registers <id:...>)
from notify import views

app_name = "notify"
urlpatterns = [
    path("", views.channel_list, name="channels"),
    path("add/", views.channel_add, name="channel-add"),
    path("<id:pk>/", views.channel_detail, name="channel"),
    path("<id:pk>/edit/", views.channel_edit, name="channel-edit"),
    path("<id:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("<id:pk>/test/", views.channel_test, name="channel-test"),
]
