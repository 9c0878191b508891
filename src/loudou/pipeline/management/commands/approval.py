"""`loudou approval list|approve|reject`: the 立项 inbox at the command line."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from loudou.core.cli import activate_language, dump_json, resolve_actor
from loudou.core.errors import LoudouError
from loudou.org.access import manages_branch
from loudou.pipeline import services as ps
from loudou.pipeline.models import ApprovalStatus, Opportunity, ProjectApproval


class Command(BaseCommand):
    help = "List project set-up (立项) requests waiting for you; approve or reject them."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--as", dest="as_user", required=True, help="The deciding manager.")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--lang", choices=["zh-hans", "en"])
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Pending requests you may decide.")
        for name in ("approve", "reject"):
            p = sub.add_parser(name)
            p.add_argument("id", type=int)
            p.add_argument("--comment", default="", required=name == "reject")

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options["lang"])
        actor = resolve_actor(options["as_user"])
        if options["action"] == "list":
            pending = ProjectApproval.objects.filter(
                status=ApprovalStatus.PENDING,
                opportunity__in=Opportunity.objects.visible_to(actor),
            ).select_related("opportunity", "opportunity__account", "requested_by")
            rows: list[dict[str, Any]] = [
                {
                    "id": a.pk,
                    "opportunity": a.opportunity.name,
                    "account": a.opportunity.account.name,
                    "requested_by": a.requested_by.username,
                    "requested_at": a.requested_at.isoformat(),
                    "budget": str(a.budget),
                }
                for a in pending.order_by("requested_at", "id")
                if manages_branch(actor, a.opportunity.branch_id) and a.requested_by_id != actor.pk
            ]
            if options["json"]:
                self.stdout.write(dump_json(rows))
            else:
                for r in rows:
                    self.stdout.write(
                        f"{r['id']:6} {r['account']} / {r['opportunity']} — "
                        f"{r['requested_by']} {r['requested_at'][:10]} budget {r['budget']}"
                    )
            return
        try:
            decided = ps.approval_decide(
                approval=options["id"],
                actor=actor,
                approve=options["action"] == "approve",
                comment=options["comment"],
            )
        except LoudouError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{decided.pk}: {decided.status}")
