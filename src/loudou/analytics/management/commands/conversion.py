"""`loudou conversion [--from DATE --to DATE] [--playbook KEY] [--json]`: conversion per stage of a
creation cohort, naive, closed-only and censoring-aware side by side."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.scope import add_scope_arguments, iso_date, scope_from_options
from loudou.core.cli import dump_json

NONE = "—"


def _percent(rate: float | None) -> str:
    return NONE if rate is None else f"{rate * 100:.1f} %"


def _ratio(rate: float | None, numerator: int, denominator: int) -> str:
    """A rate with the deals behind it, e.g. `71.4 % (5/7)`."""
    return f"{_percent(rate)} ({numerator}/{denominator})"


def _interval(bounds: list[float] | None) -> str:
    return NONE if bounds is None else f"{bounds[0] * 100:.1f}–{bounds[1] * 100:.1f} %"


class Command(BaseCommand):
    help = (
        "Conversion per stage for deals created in [--from, --to): reached, advanced, lost, open; "
        "naive, closed-only and censoring-aware (Aalen–Johansen) rates with a 90 % interval."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--from",
            dest="date_from",
            type=iso_date,
            help="First creation day of the cohort (default: the earliest deal).",
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=iso_date,
            help="Day after the cohort's last creation day (default: tomorrow).",
        )
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        date_from, date_to = options["date_from"], options["date_to"]
        if date_from and date_to and date_from >= date_to:
            raise CommandError("--from must be before --to.")
        try:
            data = conversion_by_stage(
                scope.actor,
                scope.playbook,
                date_from=date_from,
                date_to=date_to,
                **scope.filters(),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        names = {s.key: s.name for s in scope.playbook.ordered_stages()}
        cohort = data["cohort"]
        table = Table(
            title=_("%(playbook)s — deals created from %(start)s to before %(end)s")
            % {"playbook": data["playbook"], "start": cohort["from"], "end": cohort["to"]},
            title_justify="left",
            caption=_(
                "Reached: was at the stage or a later one (skipped stages count, revisits once). "
                "Each rate shows the deals behind it; the censoring-aware estimate follows the "
                "open deals' age in the stage."
            ),
            caption_justify="left",
        )
        columns = [
            (_("Stage"), "left"),
            (_("Reached"), "right"),
            (_("Advanced"), "right"),
            (_("Lost here"), "right"),
            (_("Still open"), "right"),
            (_("naive (open counted as not converted)"), "right"),
            (_("closed only (open ignored)"), "right"),
            (_("censoring-aware (Aalen–Johansen)"), "right"),
            # "90 % i..." reads to xgettext as a %-format: keep the percentage out of the msgid.
            (_("Interval (%(level)s)") % {"level": "90%"}, "right"),
        ]
        rows = [[names.get(row["key"], row["key"]), *self._cells(row)] for row in data["stages"]]
        overall = [_("Overall: created → won"), *self._cells(data["overall"])]
        for i, (label, justify) in enumerate(columns):
            # Figures never wrap: the headers do.
            widest = max(len(cells[i]) for cells in [*rows, overall]) if i else 12
            table.add_column(
                label,
                justify=justify,  # type: ignore[arg-type]
                min_width=widest,
                max_width=max(widest, 16 if i else 24),
            )
        for cells in rows:
            table.add_row(*cells)
        table.add_section()
        table.add_row(*overall)
        Console(file=self.stdout, width=170).print(table)  # type: ignore[arg-type]

    @staticmethod
    def _cells(row: dict[str, Any]) -> list[str]:
        reached, advanced, lost = row["reached"], row["advanced"], row["lost_here"]
        estimate = row["censored_estimate"]
        behind = _("%(open)s of %(n)s open") % {"n": reached, "open": row["open_here"]}
        return [
            str(reached),
            str(advanced),
            str(lost),
            str(row["open_here"]),
            _ratio(row["naive"], advanced, reached) if row["naive"] is not None else NONE,
            _ratio(row["closed_only"], advanced, advanced + lost)
            if row["closed_only"] is not None
            else NONE,
            f"{_percent(estimate)} ({behind})" if estimate is not None else NONE,
            _interval(row["interval"]),
        ]
