"""`loudou velocity [--from DATE] [--to DATE] [--playbook KEY] [--json]`: time in stage and the
cycle time to won."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.scope import add_scope_arguments, iso_date, scope_from_options
from loudou.analytics.velocity import velocity
from loudou.core.cli import dump_json


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


class Command(BaseCommand):
    help = (
        "Time in stage: median and p80 of completed stays, Kaplan–Meier median with open stays "
        "censored, and the cycle time to won."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--from", dest="from_", type=iso_date, help="Only stays entered on or after this day."
        )
        parser.add_argument("--to", type=iso_date, help="Only stays entered on or before this day.")
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        if options["from_"] and options["to"] and options["from_"] > options["to"]:
            raise CommandError("--from is after --to.")
        data = velocity(
            scope.actor,
            scope.playbook,
            entered_from=options["from_"],
            entered_to=options["to"],
            **scope.filters(),
        )
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        period = ""
        if options["from_"] or options["to"]:
            period = f" ({options['from_'] or '…'} – {options['to'] or '…'})"
        heading = _("Time in stage (days)")
        table = Table(
            title=f"{data['playbook']} — {heading}{period}",
            title_justify="left",
            caption=_(
                "KM median: Kaplan–Meier median with deals still in the stage counted as "
                "censored; for the cycle to won, open deals are censored and lost deals left out."
            ),
            caption_justify="left",
        )
        columns = [(_("Stage"), "left"), (_("Completed stays"), "right")]
        columns += [(_("Median"), "right"), (_("P80"), "right"), (_("KM median"), "right")]
        columns += [(_("Still in stage"), "right")]
        for label, justify in columns:
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        for s in data["stages"]:
            table.add_row(
                s["name"],
                str(s["completed_stays"]),
                _days(s["median_days"]),
                _days(s["p80_days"]),
                _days(s["km_median_days"]),
                str(s["open_stays"]),
            )
        cycle = data["cycle_to_won"]
        table.add_section()
        table.add_row(
            _("Cycle to won (from creation)"),
            str(cycle["completed"]),
            _days(cycle["median_days"]),
            _days(cycle["p80_days"]),
            _days(cycle["km_median_days"]),
            "",
        )
        Console(file=self.stdout, width=110).print(table)  # type: ignore[arg-type]
