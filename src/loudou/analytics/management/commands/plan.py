"""`loudou plan --target AMOUNT --period P`: the reverse funnel (倒推) — the pipeline each stage
needs, and by when, to meet a target."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.management.commands.forecast import amount_text, period_arg
from loudou.analytics.plan import plan
from loudou.analytics.scope import add_scope_arguments, scope_from_options
from loudou.core.cli import dump_json
from loudou.core.errors import ValidationFailed
from loudou.core.money import parse_amount


class Command(BaseCommand):
    help = (
        "Reverse funnel (倒推): from a target and a period, the pipeline needed at each stage "
        "and the date by which it must exist."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--target", required=True, help="The bookings to reach, e.g. 5000000.")
        parser.add_argument(
            "--period",
            type=period_arg,
            required=True,
            help="A quarter (2026Q1) or month (2026-03).",
        )
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        try:
            target = parse_amount(options["target"], field="target")
        except ValidationFailed as exc:
            raise CommandError(str(exc)) from None
        assert target is not None
        data = plan(scope, options["period"], target)
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        title = _(
            "Plan %(period)s — target %(target)s, booked %(booked)s, still to win %(gap)s"
        ) % {
            "period": data["period"],
            "target": amount_text(data["target"]),
            "booked": amount_text(data["booked"]),
            "gap": amount_text(data["gap"]),
        }
        table = Table(title=title, title_justify="left")
        columns = [
            (_("Stage"), "left"),
            (_("Closed deals behind it"), "right"),
            (_("Conversion to won"), "right"),
            (_("Needed amount"), "right"),
            (_("Needed deals"), "right"),
            (_("Median days to won"), "right"),
            (_("Needed by"), "right"),
        ]
        for label, justify in columns:
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        notes = []
        for s in data["stages"]:
            conversion = s["conversion_to_won"]
            table.add_row(
                s["name"],
                str(s["closed_reached"]),
                "—" if conversion is None else f"{conversion:.1%}",
                amount_text(s["needed_amount"]),
                "—" if s["needed_count"] is None else str(s["needed_count"]),
                "—" if s["median_days_to_won"] is None else f"{s['median_days_to_won']:g}",
                "—" if s["by_date"] is None else s["by_date"].isoformat(),
            )
            if s["note"]:
                notes.append(f"{s['name']}: {s['note']}")
        console = Console(file=self.stdout, width=130)  # type: ignore[arg-type]
        console.print(table)
        average = amount_text(data["average_won_amount"])
        console.print(
            _("Needed deals = needed amount ÷ the average won deal (%(avg)s, %(n)s won deals).")
            % {"avg": average, "n": data["won_deals"]}
        )
        for note in notes:
            console.print(note)
