from django.apps import AppConfig


class BreakerConfig(AppConfig):
    name = "breaker"
    verbose_name = "Lambda circuit breakers"
