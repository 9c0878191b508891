"""`loudou backup FILE [--force] [--json]`: an online, verified copy of the live database (SQLite's
backup API, or pg_dump on PostgreSQL) with its manifest beside it; `loudou restore FILE` puts it
back."""

import argparse
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.core.backup import ENGINES, backup_database, manifest_path
from loudou.core.cli import BarProgress, activate_language, dump_json, progress_bar
from loudou.core.errors import LoudouError

SHOWN = ["org.user", "customers.account", "pipeline.opportunity", "pipeline.opportunityhistory",
         "core.auditevent"]  # fmt: skip


class Command(BaseCommand):
    help = (
        "Back up the live database into FILE while people keep working (SQLite online backup, "
        "or pg_dump on PostgreSQL), verify the copy, and write FILE.manifest.json beside it. "
        "`loudou restore FILE` restores it. It holds password hashes: keep it safe."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--force", action="store_true", help="Replace FILE if it exists.")
        parser.add_argument("--json", action="store_true", help="Print the manifest as JSON.")
        parser.add_argument("--lang", help="zh-hans or en: the language of the messages.")

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options.get("lang"))
        started = time.monotonic()
        try:
            with progress_bar(20) as bar:
                manifest = backup_database(
                    Path(options["file"]), replace=options["force"], progress=BarProgress(bar)
                )
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        seconds = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(dump_json({**manifest, "seconds": seconds}))
            return
        path = Path(options["file"]).absolute()
        out = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        out.print(rows_table(_("Backup written to %(file)s") % {"file": path}, manifest["rows"]))
        checked = (
            _("integrity check and rows per table")
            if manifest["engine"] == "sqlite"
            else _("pg_restore lists every table")
        )
        out.print(
            _(
                "%(engine)s backup of %(mb)s MB in %(s)s s, verified (%(checked)s). "
                "SHA-256 %(sha)s; manifest in %(manifest)s."
            )
            % {
                "engine": ENGINES[manifest["engine"]],
                "checked": checked,
                "mb": f"{manifest['bytes'] / 1e6:,.1f}",
                "s": seconds,
                "sha": manifest["sha256"],
                "manifest": manifest_path(path).name,
            }
        )
        out.print(
            _("The backup holds the users' password hashes: keep it as safe as the database.")
        )


def rows_table(title: str, rows: dict[str, int]) -> Table:
    """The main tables' rows and the total, as backup and restore print them."""
    from django.apps import apps

    table = Table(title=title, title_justify="left")
    table.add_column(_("Contents"))
    table.add_column(_("Rows"), justify="right")
    for label in SHOWN:
        if label in rows:
            model = apps.get_model(label)
            table.add_row(str(model._meta.verbose_name_plural), f"{rows[label]:,}")
    table.add_row(
        _("All %(n)s loudou tables") % {"n": len(rows)}, f"{sum(rows.values()):,}", style="bold"
    )
    return table
