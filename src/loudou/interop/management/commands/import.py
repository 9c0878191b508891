"""`loudou import FORMAT PATH…`: bring data from another CRM into loudou, all or nothing;
re-importing the same files creates nothing twice and updates what changed.

Formats: native (loudou's template), salesforce, hubspot, pipedrive, odoo (files exported from
those CRMs, CSV in any usual encoding or XLSX), maven (the Maven CRM dataset directory);
`loudou import template FILE` writes the native template; `loudou import all DIR` restores a dump
of `loudou export all` into an empty database."""

import argparse
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.scope import iso_date
from loudou.core.cli import (
    BarProgress,
    cyclic_gc_paused,
    dump_json,
    progress_bar,
    resolve_actor,
)
from loudou.core.errors import LoudouError, ValidationFailed
from loudou.interop.dump import load_all
from loudou.interop.formats import DESCRIPTIONS
from loudou.interop.importer import ImportRefused
from loudou.interop.management.commands.export import rows_table
from loudou.interop.maven import import_maven
from loudou.interop.run import import_paths
from loudou.interop.template import write_template
from loudou.org.models import User
from loudou.playbooks.selectors import playbook_get

MAX_SHOWN = 200


def print_file_report(out: Console, report: dict[str, Any]) -> None:
    """The report of a file import as the terminal shows it."""
    title = _("%(s)s import onto playbook %(p)s") % {
        "s": report["source"],
        "p": report["playbook"],
    }
    if report["dry_run"]:
        title += " — " + _("DRY RUN: nothing was saved")
    out.print(title, style="bold")
    table = Table(show_header=False, box=None)
    created = report.get("created", {})
    for label, value in (
        (_("Deals in the files"), report["deals_in_file"]),
        (_("New deals"), report["new"]),
        (_("Deals imported before"), report["already_imported"]),
        (_("… of them updated"), report.get("updated", 0)),
        (_("New accounts"), created.get("accounts", 0)),
        (_("New contacts"), created.get("contacts", 0)),
        (_("History rows written"), created.get("history_rows", 0)),
        (_("Repeated history rows left out"), report["history_rows_collapsed"]),
    ):
        table.add_row(label, f"{value:,}")
    out.print(table)
    mapping = Table(title=_("Stage mapping"), title_justify="left")
    mapping.add_column(_("Stage in the file"))
    mapping.add_column(_("Stage in loudou"))
    mapping.add_column(_("Chosen by"))
    for name, target in report["mapping"].items():
        mapping.add_row(name, target, report["mapping_how"].get(name, ""))
    out.print(mapping)
    if report["by_stage"]:
        out.print(
            _("Deals by stage after the import: %(s)s")
            % {"s": ", ".join(f"{k} {v:,}" for k, v in report["by_stage"].items())}
        )
    for note in report.get("notes", []):
        out.print("• " + note)
    out.print(_("Took %(s)s s.") % {"s": report.get("seconds", "")})


# Marked for extraction here, translated when printed.
LABELS = {
    "branches": gettext_noop("Branches"),
    "industries": gettext_noop("Industries"),
    "users": gettext_noop("Users"),
    "accounts": gettext_noop("Accounts"),
    "opportunities": gettext_noop("Opportunities"),
}


class Command(BaseCommand):
    help = (
        "Import data from another CRM (formats: native, salesforce, hubspot, pipedrive, odoo, "
        "maven; `template FILE` writes the native template; `all DIR` restores a dump)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
        for name, description in DESCRIPTIONS.items():
            sub = formats.add_parser(name, help=description)
            sub.add_argument(
                "paths",
                nargs="+",
                metavar="PATH",
                help="CSV or XLSX files, or directories of them.",
            )
            if name == "salesforce":
                sub.add_argument(
                    "--history",
                    action="append",
                    default=[],
                    metavar="FILE",
                    help="An OpportunityHistory export (also recognised among the PATHs).",
                )
            sub.add_argument("--mapping", metavar="FILE", help="A stage mapping (YAML).")
            sub.add_argument(
                "--save-mapping",
                metavar="FILE",
                help="Write the stage mapping in force (the automatic one, or the file's "
                "completed) to FILE, to edit and pass back with --mapping.",
            )
            sub.add_argument(
                "--playbook",
                metavar="KEY",
                help="Import onto this playbook (default: the default one).",
            )
            sub.add_argument(
                "--encoding", help="The files' encoding (default: detected; e.g. gbk, utf-8)."
            )
            sub.add_argument("--dayfirst", action="store_true", help="Read 01/03/2026 as 1 March.")
            sub.add_argument(
                "--default-owner",
                metavar="USER",
                help="Owner of deals whose owner is no loudou user.",
            )
            sub.add_argument(
                "--currency",
                default="CNY",
                help="Currency of amounts the file gives none for (default CNY).",
            )
            sub.add_argument(
                "--dry-run", action="store_true", help="Check and report, save nothing."
            )
            sub.add_argument(
                "--as", dest="as_user", help="Import as this administrator or manager."
            )
            sub.add_argument("--json", action="store_true", help="Print the report as JSON.")
        template = formats.add_parser(
            "template", help="Write loudou's import template (XLSX, or CSV files into a directory)."
        )
        template.add_argument(
            "output", metavar="FILE", help="an .xlsx file, or a directory for CSV files"
        )
        template.add_argument(
            "--language", default="", help="zh-hans or en (default: the active language)"
        )
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
        everything = formats.add_parser(
            "all",
            help="Restore a dump written by `loudou export all DIR` into an empty, migrated "
            "database: checked against its manifest, loaded in one transaction, all or nothing.",
        )
        everything.add_argument("directory", metavar="DIR")
        everything.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["format"] == "template":
            self._template(options)
            return
        if options["format"] in DESCRIPTIONS:
            self._import_file(options)
            return
        if options["format"] == "all":
            self._restore(options)
            return
        actor = resolve_actor(options.get("as_user"))
        started = time.monotonic()
        try:
            with progress_bar() as bar:
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

    def _restore(self, options: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            with progress_bar() as bar:
                report = load_all(options["directory"], progress=BarProgress(bar))
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        report["seconds"] = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(dump_json(report))
            return
        out = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        title = _("Restored the dump in %(dir)s (written %(at)s, from %(vendor)s)") % {
            "dir": report["directory"],
            "at": report["exported_at"],
            "vendor": report["database_vendor"],
        }
        out.print(rows_table(title, report["models"]))
        out.print(_("Took %(s)s s.") % {"s": report["seconds"]})

    def _template(self, options: dict[str, Any]) -> None:
        language = options["language"] or get_language() or "en"
        written = write_template(Path(options["output"]), language)
        for path in written:
            self.stdout.write(str(path))

    def _import_file(self, options: dict[str, Any]) -> None:
        actor = resolve_actor(options.get("as_user"))
        started = time.monotonic()
        default_owner = None
        if options.get("default_owner"):
            default_owner = User.objects.filter(username=options["default_owner"]).first()
            if default_owner is None:
                raise CommandError(_("No user %(u)s.") % {"u": options["default_owner"]})
        paths = [*options["paths"], *options.get("history", [])]
        try:
            playbook = playbook_get(options["playbook"]) if options.get("playbook") else None
            with progress_bar() as bar, cyclic_gc_paused():
                report = import_paths(
                    options["format"],
                    paths,
                    encoding=options.get("encoding"),
                    mapping_path=options.get("mapping"),
                    actor=actor,
                    playbook=playbook,
                    dayfirst=options["dayfirst"],
                    default_owner=default_owner,
                    default_currency=options["currency"],
                    dry_run=options["dry_run"],
                    progress=BarProgress(bar),
                )
        except ImportRefused as exc:
            report = exc.details.get("report") or {}
            self._save_mapping(options, report)
            problems = exc.details.get("problems") or []
            if options["json"]:  # the whole report, every problem included, then exit 1
                self.stdout.write(dump_json({"error": str(exc), **report}))
                raise CommandError(str(exc)) from None
            shown = problems[:MAX_SHOWN]
            more = len(problems) - len(shown)
            lines = [str(exc), *shown]
            if more:
                lines.append(_("… and %(n)s more (--json lists them all).") % {"n": more})
            raise CommandError("\n".join(lines)) from None
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        report["seconds"] = round(time.monotonic() - started, 2)
        self._save_mapping(options, report)
        if options["json"]:
            self.stdout.write(dump_json(report))
            return
        print_file_report(Console(file=self.stdout, width=110), report)  # type: ignore[arg-type]

    def _save_mapping(self, options: dict[str, Any], report: dict[str, Any]) -> None:
        if options.get("save_mapping") and report.get("mapping_yaml"):
            Path(options["save_mapping"]).write_text(report["mapping_yaml"], encoding="utf-8")

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
