"""`loudou forecast --period 2026Q1|2026-03 [--simulations N] [--seed S]`: booked, weighted and
simulated bookings of a month or quarter against the target."""

import argparse
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.forecast import (
    DEFAULT_RUNS,
    PROBABILITY_SOURCES,
    Period,
    forecast,
    parse_period,
)
from loudou.analytics.scope import add_scope_arguments, scope_from_options
from loudou.core.cli import dump_json


def period_arg(value: str) -> Period:
    """argparse type for --period: 2026Q1 or 2026-03."""
    try:
        return parse_period(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(value: str) -> int:
    """argparse type for a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def amount_text(value: str | None) -> str:
    """An amount string for a table cell, with thousands separators; "—" for none."""
    return "—" if value is None else f"{Decimal(value):,.2f}"


def add_simulation_arguments(parser: argparse.ArgumentParser) -> None:
    """--period, --simulations and --seed, shared by `loudou forecast` and `loudou targets`."""
    parser.add_argument(
        "--period",
        type=period_arg,
        required=True,
        help="A quarter (2026Q1) or month (2026-03).",
    )
    parser.add_argument(
        "--simulations",
        type=positive_int,
        default=DEFAULT_RUNS,
        help=f"Monte Carlo runs (default {DEFAULT_RUNS}).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    parser.add_argument(
        "--probabilities",
        choices=PROBABILITY_SOURCES,
        default="deal",
        help="Weigh open deals by their own probability (override, else the stage's default; "
        "the default) or by the probability learned from history (`loudou model train`).",
    )


class Command(BaseCommand):
    help = (
        "Forecast a month or quarter: booked, weighted, simulated P10/P50/P90 and the chance "
        "of meeting the target."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_simulation_arguments(parser)
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        try:
            data = forecast(
                scope,
                options["period"],
                runs=options["simulations"],
                seed=options["seed"],
                probabilities=options["probabilities"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        sim = data["simulated"]
        table = Table(
            title=_("Forecast %(period)s — %(playbook)s")
            % {"period": data["period"], "playbook": scope.playbook.key},
            title_justify="left",
        )
        table.add_column(_("Figure"))
        table.add_column(_("Amount"), justify="right")
        p_hit = data["p_hit_target"]
        rows = [
            (_("Booked (won in the period)"), amount_text(data["booked"])),
            (_("Weighted forecast"), amount_text(data["weighted"])),
            (_("Simulated P10"), amount_text(sim["p10"])),
            (_("Simulated P50"), amount_text(sim["p50"])),
            (_("Simulated P90"), amount_text(sim["p90"])),
            (_("Target"), amount_text(data["target"])),
            (_("Chance of meeting the target"), "—" if p_hit is None else f"{p_hit:.1%}"),
            (_("Open deals closing in the period"), str(data["open_deals"])),
            (_("Simulation runs"), f"{sim['runs']:,}"),
        ]
        for label, value in rows:
            table.add_row(label, value)
        console = Console(file=self.stdout, width=110)  # type: ignore[arg-type]
        console.print(table)
        console.print(data["probabilities"]["note"], markup=False, highlight=False)
