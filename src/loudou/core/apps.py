from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "loudou.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from loudou.core.memory import keep_freed_memory

        # Once per process (web worker, command, test run), before any large analytic.
        keep_freed_memory(settings.LOUDOU_HEAP_KEEP_MB * 1024 * 1024)
