"""`loudou account list|show|qualify`: accounts, their ICP fit and group, at the command line."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from loudou.core.cli import activate_language, dump_json, resolve_actor
from loudou.core.errors import LoudouError
from loudou.customers.models import Account
from loudou.customers.selectors import account_group_tree, icp_fit
from loudou.customers.services import account_qualify
from loudou.playbooks.selectors import playbook_get


class Command(BaseCommand):
    help = "List accounts, show one with its ICP fit and group, or (re)qualify it."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--as", dest="as_user", help="See and act as this user.")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--lang", choices=["zh-hans", "en"])
        sub = parser.add_subparsers(dest="action", required=True)
        lst = sub.add_parser("list")
        lst.add_argument("--targets", action="store_true", help="Only target accounts.")
        lst.add_argument("--search", default="")
        lst.add_argument("--limit", type=int, default=50)
        show = sub.add_parser("show")
        show.add_argument("id", type=int)
        qualify = sub.add_parser("qualify", help="Re-run stage 1, or override it (managers).")
        qualify.add_argument("id", type=int)
        qualify.add_argument("--override", choices=["target", "not-target"])
        qualify.add_argument("--reason", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options["lang"])
        actor = resolve_actor(options["as_user"])
        visible = Account.objects.visible_to(actor).select_related("industry", "parent", "owner")
        if options["action"] == "list":
            qs = visible
            if options["targets"]:
                qs = qs.filter(is_target=True)
            if options["search"]:
                qs = qs.filter(name__icontains=options["search"])
            rows = [
                {
                    "id": a.pk,
                    "name": a.name,
                    "industry": a.industry.key if a.industry else None,
                    "size": a.size_band,
                    "group": a.parent.name if a.parent else None,
                    "target": a.is_target,
                    "owner": a.owner.username,
                }
                for a in qs.order_by("name", "id")[: options["limit"]]
            ]
            if options["json"]:
                self.stdout.write(dump_json(rows))
            else:
                for r in rows:
                    mark = "★" if r["target"] else " "
                    self.stdout.write(
                        f"{r['id']:6} {mark} {r['name']}  ({r['industry']}, {r['size']})"
                    )
            return
        account = visible.filter(pk=options["id"]).first()
        if account is None:
            raise CommandError("No such account.")
        if options["action"] == "qualify":
            if options["as_user"] is None:
                raise CommandError("Qualifying needs --as USER.")
            override = {"target": True, "not-target": False}.get(options["override"] or "")
            try:
                account_qualify(
                    account=account, actor=actor, override=override, reason=options["reason"]
                )
            except LoudouError as exc:
                raise CommandError(exc.message) from None
        fit = icp_fit(account, playbook_get())
        data = {
            "id": account.pk,
            "name": account.name,
            "credit_code": account.credit_code,
            "target": account.is_target,
            "icp_fit": fit,
            "group": [
                {"depth": d, "id": a.pk, "name": a.name} for d, a in account_group_tree(account)
            ],
        }
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        self.stdout.write(
            f"{account.name}  {'★ target account' if account.is_target else 'not a target'}"
        )
        for c in fit:
            self.stdout.write(f"  {'✓' if c['holds'] else '✗'} {c['text']} — {c['reason']}")
        self.stdout.write("group:")
        for row in data["group"]:
            self.stdout.write(f"  {'  ' * row['depth']}{row['name']}")
