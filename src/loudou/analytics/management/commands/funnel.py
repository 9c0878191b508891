"""`loudou funnel [--as-of DATE] [--playbook KEY] [--json]`: the funnel snapshot."""

import argparse
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.scope import add_scope_arguments, iso_date, scope_from_options
from loudou.analytics.selectors import funnel_snapshot
from loudou.core.cli import dump_json


class Command(BaseCommand):
    help = "The funnel: target accounts, open deals per stage (count, amount, weighted), won, lost."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--as-of", type=iso_date, help="As of the end of this day (default now)."
        )
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        data = funnel_snapshot(
            scope.actor,
            scope.playbook,
            as_of=options["as_of"],
            **scope.filters(),
        )
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        table = Table(title=f"{data['playbook']} — {data['as_of']}", title_justify="left")
        columns = [("#", "left"), (_("Stage"), "left"), (_("Count"), "right")]
        columns += [(_("Amount"), "right"), (_("Weighted amount"), "right")]
        for label, justify in columns:
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        table.add_row("1", _("Target accounts"), str(data["target_accounts"]), "", "")
        for s in data["stages"]:
            table.add_row(
                str(s["order"]),
                s["name"],
                str(s["count"]),
                f"{Decimal(s['amount']):,.2f}",
                f"{Decimal(s['weighted_amount']):,.2f}",
            )
        for key, label in (("won", _("Won")), ("lost", _("Lost"))):
            closed = data[key]
            table.add_row("", label, str(closed["count"]), f"{Decimal(closed['amount']):,.2f}", "")
        Console(file=self.stdout, width=110).print(table)  # type: ignore[arg-type]
