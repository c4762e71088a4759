from django.apps import AppConfig


class BreakerConfig(AppConfig):
    name = "breaker"
    verbose_name = "Lambda circuit breakers"

    def ready(self) -> None:
        from breaker import handlers, tiles  # noqa: F401  (tiles registers the dashboard tile)
        from console import schedules

        handlers.register()
        # django-q schedules have minute granularity (its scheduler itself runs about every 30 s),
        # so the tick is every minute; a breaker that turns half-open gets its first probe
        # enqueued at once instead of waiting for it.
        schedules.register("breaker.tick", "breaker.tasks.tick", minutes=1)
