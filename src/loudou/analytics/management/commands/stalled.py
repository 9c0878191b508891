"""`loudou stalled [--playbook KEY] [--branch CODE] [--owner USER] [--json]`: open deals that
have been in their stage longer than its threshold."""

import argparse
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.scope import add_scope_arguments, scope_from_options
from loudou.analytics.velocity import stalled
from loudou.core.cli import dump_json


class Command(BaseCommand):
    help = (
        "Stalled deals: open deals in their stage longer than its max days "
        "(or, where unset, the stage's historical p80)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        data = stalled(scope.actor, scope.playbook, **scope.filters())
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        sources = {"max_days": _("max days"), "p80": _("p80")}
        heading = _("Stalled deals")
        table = Table(
            title=f"{data['playbook']} — {heading} — {data['as_of']} ({len(data['deals'])})",
            title_justify="left",
        )
        columns = [("#", "right"), (_("Opportunity"), "left"), (_("Account"), "left")]
        columns += [(_("Owner"), "left"), (_("Stage"), "left"), (_("Days in stage"), "right")]
        columns += [(_("Threshold"), "right"), (_("Amount"), "right"), (_("Close date"), "left")]
        for label, justify in columns:
            # Chinese names have no spaces to wrap at: fold them rather than cut them off.
            table.add_column(label, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for d in data["deals"]:
            table.add_row(
                str(d["id"]),
                d["name"],
                d["account"] or "",
                d["owner"],
                d["stage_name"],
                f"{d['days_in_stage']:,.1f}",
                f"{d['threshold_days']:,.1f} ({sources[d['threshold_source']]})",
                f"{Decimal(d['amount']):,.2f} {d['currency']}",
                d["close_date"],
            )
        Console(file=self.stdout, width=160).print(table)  # type: ignore[arg-type]
