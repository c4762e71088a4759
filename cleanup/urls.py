from django.urls import path

from cleanup import views

app_name = "cleanup"
urlpatterns = [
    path("repositories/", views.repository_list, name="repositories"),
    path("repositories/<int:pk>/", views.repository_detail, name="repository"),
    path("repositories/<int:pk>/opt-in/", views.repository_opt_in, name="repository-opt-in"),
    path("repositories/<int:pk>/policy/", views.repository_policy, name="repository-policy"),
    path(
        "repositories/registry/<str:account_id>/", views.registry_settings, name="registry-settings"
    ),
    path("repositories/images/<int:pk>/protect/", views.image_protect, name="image-protect"),
    path("repositories/images/<int:pk>/unprotect/", views.image_unprotect, name="image-unprotect"),
    path("repositories/images/<int:pk>/check/", views.image_check, name="image-check"),
    path("deletions/", views.deletion_queue, name="deletions"),
    path("deletions/approve/", views.checks_approve, name="checks-approve"),
    path("deletions/reject/", views.checks_reject, name="checks-reject"),
    path("deletions/protect/", views.checks_protect, name="checks-protect"),
    path("checks/<int:pk>/", views.check_detail, name="check"),
]
