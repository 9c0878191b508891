"""`loudou setup`: load the built-in playbooks and default catalogues (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from loudou.pipeline.catalogs import lost_reasons_load_defaults
from loudou.playbooks.services import playbooks_load_builtin


class Command(BaseCommand):
    help = "Load the built-in playbooks and the default lost reasons; safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        for playbook in playbooks_load_builtin():
            self.stdout.write(f"playbook {playbook.key} v{playbook.version}")
        added = lost_reasons_load_defaults()
        self.stdout.write(f"lost reasons: {added} added")
