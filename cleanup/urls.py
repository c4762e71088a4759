from django.urls import path

import console.converters  # noqa: F401  (registers <id:...> and <account:...>)
from cleanup import archive_views, views

app_name = "cleanup"
urlpatterns = [
    path("repositories/", views.repository_list, name="repositories"),
    path("repositories/<id:pk>/", views.repository_detail, name="repository"),
    path("repositories/<id:pk>/opt-in/", views.repository_opt_in, name="repository-opt-in"),
    path("repositories/<id:pk>/policy/", views.repository_policy, name="repository-policy"),
    path(
        "repositories/registry/<account:account_id>/",
        views.registry_settings,
        name="registry-settings",
    ),
    path("repositories/images/<id:pk>/protect/", views.image_protect, name="image-protect"),
    path("repositories/images/<id:pk>/unprotect/", views.image_unprotect, name="image-unprotect"),
    path("repositories/images/<id:pk>/check/", views.image_check, name="image-check"),
    path("repositories/images/<id:pk>/restore/", archive_views.image_restore, name="image-restore"),
    path(
        "repositories/images/<id:pk>/restore/state/",
        archive_views.image_restore_state,
        name="image-restore-state",
    ),
    path("deletions/", views.deletion_queue, name="deletions"),
    path("deletions/watch/", views.deletion_watch, name="deletions-watch"),
    path("deletions/approve/", views.checks_approve, name="checks-approve"),
    path("deletions/reject/", views.checks_reject, name="checks-reject"),
    path("deletions/protect/", views.checks_protect, name="checks-protect"),
    path("checks/<id:pk>/", views.check_detail, name="check"),
]
