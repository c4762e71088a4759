from django.urls import path

from breaker import views

app_name = "breaker"
urlpatterns = [
    path("", views.breaker_list, name="list"),
    path("add/", views.breaker_add, name="add"),
    path("<int:pk>/", views.breaker_detail, name="detail"),
    path("<int:pk>/edit/", views.breaker_edit, name="edit"),
    path("<int:pk>/trip/", views.breaker_trip, name="trip"),
    path("<int:pk>/reset/", views.breaker_reset, name="reset"),
    path("<int:pk>/probe/", views.breaker_probe, name="probe"),
    path("<int:pk>/manage/", views.breaker_manage, name="manage"),
]
