app_name = "breaker"
urlpatterns: list = []
