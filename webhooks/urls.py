from django.urls import path

from webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("webhooks/eventbridge/", views.eventbridge, name="eventbridge"),
    path("webhooks/sns/", views.sns_endpoint, name="sns"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:pk>/", views.event_detail, name="event"),
    path("inbox/<int:pk>/reprocess/", views.reprocess, name="reprocess"),
]
