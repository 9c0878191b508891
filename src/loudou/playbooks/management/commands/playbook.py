"""`loudou playbook load FILE | show [KEY] [--json] | list`."""

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.core.cli import activate_language, dump_json
from loudou.core.errors import NotFound
from loudou.core.i18n import join_list, localized, localized_dict
from loudou.playbooks.loader import PlaybookFileError
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_as_dict, playbook_get
from loudou.playbooks.services import playbook_load_file, playbooks_load_builtin


class Command(BaseCommand):
    help = "Load, show and list playbooks (the stages, criteria, roles and main work of a funnel)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="Load a playbook YAML file (a new version if changed).")
        load.add_argument("file", nargs="?", help="The YAML file.")
        load.add_argument("--builtin", action="store_true", help="Load the built-in playbooks.")
        show = sub.add_parser("show", help="Show a playbook (default: the default playbook).")
        show.add_argument("key", nargs="?")
        show.add_argument("--version", type=int, dest="pb_version")
        show.add_argument("--json", action="store_true", help="Print one JSON document.")
        show.add_argument("--lang", choices=["zh-hans", "en"])
        lst = sub.add_parser("list", help="List the playbooks and their versions.")
        lst.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "load":
            self._load(options)
        elif action == "show":
            self._show(options)
        else:
            self._list(options)

    def _load(self, options: dict[str, Any]) -> None:
        if options["builtin"]:
            for playbook in playbooks_load_builtin():
                self.stdout.write(f"{playbook.key} v{playbook.version}")
            return
        if not options["file"]:
            raise CommandError("Give a FILE or --builtin.")
        try:
            playbook, created = playbook_load_file(path=Path(options["file"]))
        except PlaybookFileError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                f"{options['file']}: {len(exc.problems)} problem(s); nothing was loaded."
            ) from None
        verb = "loaded" if created else "unchanged, still"
        self.stdout.write(f"{playbook.key}: {verb} version {playbook.version}")

    def _show(self, options: dict[str, Any]) -> None:
        activate_language(options.get("lang"))
        try:
            playbook = playbook_get(options["key"], version=options["pb_version"])
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        data = playbook_as_dict(playbook)
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        console = Console(file=self.stdout, width=120, soft_wrap=False)  # type: ignore[arg-type]
        console.print(
            f"[bold]{localized(playbook, 'name')}[/bold]  {playbook.key} v{playbook.version}"
        )
        console.print(localized(playbook, "description"))
        for stage in data["stages"]:
            console.print()
            console.print(
                f"[bold]{stage['order']}. {localized_dict(stage['name'])}[/bold]  "
                f"{stage['key']} · {stage['kind']} · {stage['probability']} %"
            )
            console.print(localized_dict(stage["definition"]))
            owners = join_list([localized_dict(o["name"]) for o in stage["owners"]])
            owners_label = _("Owners")
            console.print(f"  {owners_label}: {owners}")
            for work in stage["main_work"]:
                console.print(f"  • {localized_dict(work)}")
            if stage["criteria"]:
                table = Table(show_header=True, expand=False)
                table.add_column(_("Criterion"))
                table.add_column(_("Kind"))
                table.add_column(_("Text"))
                for c in stage["criteria"]:
                    table.add_row(c["key"], c["kind"], localized_dict(c["text"]))
                console.print(table)

    def _list(self, options: dict[str, Any]) -> None:
        rows = [
            {
                "key": p.key,
                "version": p.version,
                "current": p.is_current,
                "default": p.is_default,
                "name": {"zh": p.name_zh, "en": p.name_en},
                "stages": p.stages.count(),
            }
            for p in Playbook.objects.order_by("key", "version")
        ]
        if options["json"]:
            self.stdout.write(dump_json(rows))
            return
        for r in rows:
            marks = ("current " if r["current"] else "") + ("default" if r["default"] else "")
            self.stdout.write(f"{r['key']:20} v{r['version']:<3} {r['stages']} stages  {marks}")
