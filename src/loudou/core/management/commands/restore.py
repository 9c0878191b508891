"""`loudou restore FILE [--yes] [--json]`: replace the live database with a backup `loudou backup`
made, after checking it (manifest, checksum, engine, migrations), and verify the result."""

import argparse
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console

from loudou.core.backup import ENGINES, restore_database
from loudou.core.cli import BarProgress, activate_language, dump_json, progress_bar
from loudou.core.errors import LoudouError
from loudou.core.management.commands.backup import rows_table


class Command(BaseCommand):
    help = (
        "Restore a backup made by `loudou backup FILE` into this installation's database (same "
        "engine). Refuses a database that holds data unless --yes is given."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument(
            "--yes", action="store_true", help="Replace the data the database holds now."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--lang", help="zh-hans or en: the language of the messages.")

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options.get("lang"))
        started = time.monotonic()
        try:
            with progress_bar(20) as bar:
                report = restore_database(
                    Path(options["file"]), replace=options["yes"], progress=BarProgress(bar)
                )
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        report["seconds"] = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(dump_json(report))
            return
        out = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        title = _("Restored %(file)s (made %(created)s by loudou %(version)s)") % {
            "file": report["file"],
            "created": report["created_at"],
            "version": report["loudou_version"],
        }
        out.print(rows_table(title, report["rows"]))
        out.print(
            _(
                "%(engine)s database replaced in %(s)s s (it held %(before)s opportunities); "
                "its rows match the backup's manifest."
            )
            % {
                "engine": ENGINES[report["engine"]],
                "s": report["seconds"],
                "before": report["replaced"].get("pipeline.opportunity", 0),
            }
        )
        if report["pending_migrations"]:
            out.print(
                _(
                    "The backup comes from an earlier loudou: run `loudou migrate` to apply "
                    "%(n)s newer migrations, then `loudou analytics verify`."
                )
                % {"n": report["pending_migrations"]}
            )
        else:
            out.print(_("The analytics caches agree with the history."))
