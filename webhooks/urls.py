from django.urls import path

import console.converters  # noqa: F401  (registers <id:...> and <account:...>)
from webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("webhooks/eventbridge/", views.eventbridge, name="eventbridge"),
    path("webhooks/sns/", views.sns_endpoint, name="sns"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<id:pk>/", views.event_detail, name="event"),
    path("inbox/<id:pk>/reprocess/", views.reprocess, name="reprocess"),
]
