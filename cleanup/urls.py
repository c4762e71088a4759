app_name = "cleanup"
urlpatterns: list = []
