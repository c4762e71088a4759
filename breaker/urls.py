from django.urls import path

import console.converters  # noqa: F401  (registers <id:...> and <account:...>)
from breaker import views

app_name = "breaker"
urlpatterns = [
    path("", views.breaker_list, name="list"),
    path("add/", views.breaker_add, name="add"),
    path("<id:pk>/", views.breaker_detail, name="detail"),
    path("<id:pk>/edit/", views.breaker_edit, name="edit"),
    path("<id:pk>/trip/", views.breaker_trip, name="trip"),
    path("<id:pk>/reset/", views.breaker_reset, name="reset"),
    path("<id:pk>/probe/", views.breaker_probe, name="probe"),
    path("<id:pk>/manage/", views.breaker_manage, name="manage"),
]
