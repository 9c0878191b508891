"""`loudou funnel [--as-of DATE] [--playbook KEY] [--json]`: the funnel snapshot."""

import argparse
import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from loudou.analytics.selectors import funnel_snapshot
from loudou.core.cli import activate_language, dump_json, resolve_actor
from loudou.core.errors import NotFound
from loudou.org.access import branch_subtree_ids
from loudou.org.models import Branch, User
from loudou.playbooks.selectors import playbook_get


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-03-31") from None


class Command(BaseCommand):
    help = "The funnel: target accounts, open deals per stage (count, amount, weighted), won, lost."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--as-of", type=iso_date, help="As of the end of this day (default now)."
        )
        parser.add_argument("--playbook", help="Playbook key (default: the default playbook).")
        parser.add_argument("--branch", help="Branch code (with the branches below it).")
        parser.add_argument("--owner", help="Owner's user name.")
        parser.add_argument("--as", dest="as_user", help="See only what this user may see.")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument("--lang", choices=["zh-hans", "en"])

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options["lang"])
        actor = resolve_actor(options["as_user"])
        try:
            playbook = playbook_get(options["playbook"])
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        branch_ids = None
        if options["branch"]:
            branch = Branch.objects.filter(code=options["branch"]).first()
            if branch is None:
                raise CommandError(f"No branch with code {options['branch']!r}.")
            branch_ids = branch_subtree_ids(branch.pk)
        owner_id = None
        if options["owner"]:
            owner = User.objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user named {options['owner']!r}.")
            owner_id = owner.pk
        data = funnel_snapshot(
            actor, playbook, as_of=options["as_of"], branch_ids=branch_ids, owner_id=owner_id
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
