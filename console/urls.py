from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from console import metrics, oidc, pages, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("favicon.ico", pages.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/worker", views.healthz_worker, name="healthz-worker"),
    path("metrics", metrics.metrics, name="metrics"),
    path("oidc/", include(oidc.urlpatterns)),  # single sign-on (404 unless OIDC_* is set)
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("users/", include("accounts.user_urls")),
    path("audit/", include("audit.urls")),
    # Each app owns its pages; a section not built yet shows an empty state.
    path("", include("webhooks.urls")),  # /webhooks/... (no login) and /inbox/
    path("", include("cleanup.urls")),  # /repositories/, /deletions/
    path("breakers/", include("breaker.urls")),
    path("notifications/", include("notify.urls")),
    path("sandbox/", include("sandbox.urls")),
    path("admin/", admin.site.urls),
]
