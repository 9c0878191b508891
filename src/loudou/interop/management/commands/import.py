"""`loudou import maven DIR [--dry-run] [--snapshot-date DATE] [--as USER] [--json]`: bring data
from another CRM into loudou, all or nothing; re-importing the same files creates nothing twice."""

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loudou.analytics.scope import iso_date
from loudou.core.cli import dump_json, resolve_actor
from loudou.core.errors import ValidationFailed
from loudou.interop.maven import import_maven


class BarProgress:
    """An importer's progress as a rich bar per phase, on stderr."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        self.task = self.bar.add_task(phase, total=total)

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.task, steps)


# Marked for extraction here, translated when printed.
LABELS = {
    "branches": gettext_noop("Branches"),
    "industries": gettext_noop("Industries"),
    "users": gettext_noop("Users"),
    "accounts": gettext_noop("Accounts"),
    "opportunities": gettext_noop("Opportunities"),
}


class Command(BaseCommand):
    help = "Import data from another CRM (formats: maven)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
        maven = formats.add_parser(
            "maven",
            help="The Maven Analytics CRM Sales Opportunities dataset (a directory of 4 CSV files).",
        )
        maven.add_argument("directory", metavar="DIR")
        maven.add_argument(
            "--dry-run", action="store_true", help="Import, report, then roll everything back."
        )
        maven.add_argument(
            "--snapshot-date",
            type=iso_date,
            help="The export's date, for records the files leave undated "
            "(default: the latest date in the files).",
        )
        maven.add_argument("--as", dest="as_user", help="Import as this administrator.")
        maven.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = resolve_actor(options.get("as_user"))
        started = time.monotonic()
        console = Console(stderr=True)
        try:
            with Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as bar:
                report = import_maven(
                    options["directory"],
                    actor=actor,
                    snapshot_date=options.get("snapshot_date"),
                    dry_run=options["dry_run"],
                    progress=BarProgress(bar),
                )
        except ValidationFailed as exc:
            problems = (getattr(exc, "details", None) or {}).get("problems") or []
            raise CommandError("\n".join([str(exc), *problems])) from None
        report["seconds"] = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(dump_json(report))
            return
        self._print(report)

    def _print(self, report: dict[str, Any]) -> None:
        out = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        title = _("Maven import of %(d)s (snapshot date %(s)s)") % {
            "d": report["directory"],
            "s": report["snapshot_date"],
        }
        if report["dry_run"]:
            title += " — " + _("DRY RUN: nothing was saved")
        table = Table(title=title, title_justify="left")
        for label, justify in (
            ("", "left"),
            (_("New"), "right"),
            (_("Already imported"), "right"),
        ):
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        for key, label in LABELS.items():
            table.add_row(
                _(label), str(report["created"][key]), str(report["already_imported"][key])
            )
        out.print(table)
        stages = report["opportunities_by_stage"]
        out.print(
            _("Opportunities in the files by stage: %(s)s")
            % {"s": ", ".join(f"{k} {v:,}" for k, v in stages.items())}
        )
        out.print(_("Handled quirks:"))
        for name, count in report["normalised_products"].items():
            out.print("  " + _("product name normalised %(n)s: %(c)s") % {"n": name, "c": count})
        lines = [
            (_("open deals valued at the product's list price"), "open_at_list_price"),
            (_("lost deals with value 0 (kept at 0)"), "lost_with_zero_value"),
            (
                _("deals created at the snapshot date (no date in the file)"),
                "stamped_with_snapshot_date",
            ),
            (_("open deals expected to close at the snapshot date"), "open_close_date_is_snapshot"),
            (
                _("deals with no account (put on %(a)s)") % {"a": "(未知客户 / unknown account)"},
                "missing_accounts",
            ),
        ]
        for label, key in lines:
            out.print(f"  {label}: {report[key]:,}")
        if report["nothing_new"]:
            out.print(_("Nothing new: everything in these files was already imported."))
        out.print(_("Took %(s)s s.") % {"s": report["seconds"]})
