"""`loudou export all DIR [--force] [--json]`: a complete, documented dump of the database (one
JSON-lines file per table, a manifest and a README) that `loudou import all DIR` restores."""

import argparse
import time
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.core.cli import BarProgress, activate_language, dump_json, progress_bar
from loudou.core.errors import LoudouError
from loudou.interop.dump import dump_all


class Command(BaseCommand):
    help = "Export data from loudou (targets: all)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
        everything = targets.add_parser(
            "all",
            help="Every table, history and audit log included, as JSON lines with a manifest "
            "and a README: a backup that `loudou import all DIR` restores into an empty "
            "database. It holds password hashes: keep it safe.",
        )
        everything.add_argument("directory", metavar="DIR")
        everything.add_argument(
            "--force", action="store_true", help="Write into DIR even if it is not empty."
        )
        everything.add_argument("--json", action="store_true", help="Print the report as JSON.")
        everything.add_argument(
            "--lang", help="zh-hans or en: the language of the messages and of the README."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options.get("lang"))
        directory = Path(options["directory"])
        if directory.exists() and not directory.is_dir():
            raise CommandError(_("%(dir)s is not a directory.") % {"dir": directory})
        if directory.is_dir() and any(directory.iterdir()) and not options["force"]:
            raise CommandError(
                _(
                    "%(dir)s is not empty: nothing was written. Name a new directory, or pass "
                    "--force to write into this one."
                )
                % {"dir": directory}
            )
        started = time.monotonic()
        try:
            with progress_bar(32) as bar:
                report = dump_all(directory, progress=BarProgress(bar))
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        report["seconds"] = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(dump_json(report))
            return
        self._print(report)

    def _print(self, report: dict[str, Any]) -> None:
        out = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        title = _("Dump of the database in %(dir)s") % {"dir": report["directory"]}
        out.print(rows_table(title, report["models"]))
        out.print(
            _(
                "Written in %(s)s s; manifest.json has each file's row count and SHA-256, "
                "README.md describes the format."
            )
            % {"s": report["seconds"]}
        )
        out.print(_("The dump holds the users' password hashes: keep it as safe as the database."))


def rows_table(title: str, models: dict[str, int]) -> Table:
    """Rows per table of a dump, as `loudou export all` and `loudou import all` print them."""
    table = Table(title=title, title_justify="left")
    table.add_column(_("File"))
    table.add_column(_("Contents"))
    table.add_column(_("Rows"), justify="right")
    for label, rows in models.items():
        model = apps.get_model(label)
        table.add_row(f"{label}.jsonl", str(model._meta.verbose_name_plural), f"{rows:,}")
    table.add_row("", _("Total"), f"{sum(models.values()):,}", style="bold")
    return table
