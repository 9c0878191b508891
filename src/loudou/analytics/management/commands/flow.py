"""`loudou flow --from DATE --to DATE [--window-from DATE --window-to DATE]`: the pipeline flow
(waterfall) between two dates."""

import argparse
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.flow import pipeline_flow
from loudou.analytics.scope import add_scope_arguments, iso_date, scope_from_options
from loudou.core.cli import dump_json
from loudou.core.errors import LoudouError


class Command(BaseCommand):
    help = (
        "The pipeline flow between two dates: the open deals closing in the window at the start, "
        "+ created, + pulled in, − pushed out, ± amount changes, − won, − lost = at the end."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--from",
            dest="date_from",
            type=iso_date,
            required=True,
            help="First day of the period (the start is the pipeline when this day begins).",
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=iso_date,
            required=True,
            help="Last day of the period (the end is the pipeline when this day ends).",
        )
        parser.add_argument(
            "--window-from",
            type=iso_date,
            help="Close window: first expected close date counted (default --from).",
        )
        parser.add_argument(
            "--window-to",
            type=iso_date,
            help="Close window: last expected close date counted (default --to).",
        )
        add_scope_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        try:
            data = pipeline_flow(
                scope.actor,
                scope.playbook,
                date_from=options["date_from"],
                date_to=options["date_to"],
                window_from=options["window_from"],
                window_to=options["window_to"],
                **scope.filters(),
            )
        except LoudouError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        title = _("%(playbook)s — pipeline flow %(from)s → %(to)s") % {
            "playbook": scope.playbook.key,
            "from": data["from"].isoformat(),
            "to": data["to"].isoformat(),
        }
        caption = _("Open deals expected to close %(from)s → %(to)s") % {
            "from": data["window"]["from"].isoformat(),
            "to": data["window"]["to"].isoformat(),
        }
        table = Table(
            title=title,
            title_justify="left",
            caption=caption,
            caption_justify="left",
            min_width=64,
        )
        table.add_column("")
        table.add_column(_("Count"), justify="right")
        table.add_column(_("Amount"), justify="right")
        rows = [
            ("start", _("Pipeline at the start"), ""),
            ("created", _("Created"), "+"),
            ("pulled_in", _("Pulled in"), "+"),
            ("pushed_out", _("Pushed out"), "−"),
            ("amount_change", _("Amount changes"), "±"),
            ("won", _("Won"), "−"),
            ("lost", _("Lost"), "−"),
            ("end", _("Pipeline at the end"), "="),
        ]
        for key, label, sign in rows:
            bucket = data[key]
            value: Decimal = bucket["amount"]
            if key == "amount_change":  # a change of value, not of deals: no count
                count, shown = "", f"{value:+,.2f}"
            else:
                count, shown = str(bucket["count"]), f"{value:,.2f}"
            table.add_row(f"{sign} {label}".strip(), count, shown)
        Console(file=self.stdout, width=110).print(table)  # type: ignore[arg-type]
