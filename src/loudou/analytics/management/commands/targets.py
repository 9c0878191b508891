"""`loudou targets --period P`: target vs booked vs weighted vs simulated P50, per person, branch
and the company."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.forecast import targets_view
from loudou.analytics.management.commands.forecast import (
    add_simulation_arguments,
    amount_text,
)
from loudou.analytics.scope import add_scope_arguments, scope_from_options
from loudou.core.cli import dump_json


class Command(BaseCommand):
    help = "Targets (业绩目标) vs booked, weighted and simulated P50, per person, branch, company."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_simulation_arguments(parser)
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        data = targets_view(
            scope,
            options["period"],
            runs=options["simulations"],
            seed=options["seed"],
            probabilities=options["probabilities"],
        )
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        kinds = {"person": _("Person"), "branch": _("Branch"), "company": _("Company")}
        table = Table(title=_("Targets %(period)s") % {"period": data["period"]})
        columns = [
            (_("Kind"), "left"),
            (_("Name"), "left"),
            (_("Target"), "right"),
            (_("Booked"), "right"),
            (_("Weighted"), "right"),
            (_("Simulated P50"), "right"),
            (_("Chance of meeting the target"), "right"),
        ]
        for label, justify in columns:
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        for row in data["rows"]:
            p_hit = row["p_hit_target"]
            table.add_row(
                kinds[row["kind"]],
                row["name"],
                amount_text(row["target"]),
                amount_text(row["booked"]),
                amount_text(row["weighted"]),
                amount_text(row["p50"]),
                "—" if p_hit is None else f"{p_hit:.0%}",
            )
        console = Console(file=self.stdout, width=130)  # type: ignore[arg-type]
        console.print(table)
        console.print(data["probabilities"]["note"], markup=False, highlight=False)
