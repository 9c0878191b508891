"""`loudou opportunity list|show|advance|regress|win|lose|reopen|evidence` at the command line.

Every write goes through the same services as the web and the API, acting as the user named by
`--as` (required for writes), with that user's visibility and rights.
"""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.table import Table

from loudou.core.cli import activate_language, dump_json, resolve_actor
from loudou.core.errors import GateRefused, LoudouError
from loudou.pipeline import services as ps
from loudou.pipeline.selectors import gate_progress, opportunity_get, opportunity_list


def evidence_pair(value: str) -> tuple[str, str]:
    key, sep, note = value.partition("=")
    if not sep or not key.strip() or not note.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: write CRITERION=NOTE")
    return key.strip(), note.strip()


def summary(opp: Any) -> dict[str, Any]:
    return {
        "id": opp.pk,
        "name": opp.name,
        "account": opp.account.name,
        "owner": opp.owner.username,
        "branch": opp.branch.code,
        "playbook": opp.playbook.key,
        "stage": opp.stage.key,
        "status": opp.status,
        "amount": str(opp.amount),
        "currency": opp.currency,
        "probability": opp.probability,
        "close_date": opp.close_date.isoformat(),
        "version": opp.version,
    }


class Command(BaseCommand):
    help = "List, show and move opportunities down the funnel (writes need --as USER)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--as", dest="as_user", help="Act and see as this user.")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument("--lang", choices=["zh-hans", "en"])
        sub = parser.add_subparsers(dest="action", required=True)
        lst = sub.add_parser("list", help="Opportunities you may see.")
        lst.add_argument("--status", choices=["open", "won", "lost"])
        lst.add_argument("--stage")
        lst.add_argument("--playbook")
        lst.add_argument("--limit", type=int, default=50)
        show = sub.add_parser("show", help="One opportunity and its next gate.")
        show.add_argument("id", type=int)
        for name in ("advance", "regress"):
            p = sub.add_parser(name, help=f"{name.capitalize()} to a stage.")
            p.add_argument("id", type=int)
            p.add_argument("--to", required=True, dest="to_stage", help="Stage key.")
            p.add_argument("--expected-version", type=int)
            if name == "advance":
                p.add_argument(
                    "--evidence",
                    type=evidence_pair,
                    action="append",
                    default=[],
                    metavar="CRITERION=NOTE",
                )
                p.add_argument("--override", default="", help="Manager's reason to override.")
            else:
                p.add_argument("--reason", required=True)
        win = sub.add_parser("win", help="Close the sale.")
        win.add_argument("id", type=int)
        win.add_argument(
            "--evidence", type=evidence_pair, action="append", default=[], metavar="CRITERION=NOTE"
        )
        win.add_argument("--override", default="")
        win.add_argument("--expected-version", type=int)
        lose = sub.add_parser("lose", help="Mark lost with a reason key.")
        lose.add_argument("id", type=int)
        lose.add_argument("--reason", required=True, help="Lost reason key, e.g. price.")
        lose.add_argument("--note", default="")
        lose.add_argument("--lost-to", default=None, help="The competitor who won.")
        lose.add_argument("--expected-version", type=int)
        reopen = sub.add_parser("reopen", help="Reopen a lost (or, for managers, won) deal.")
        reopen.add_argument("id", type=int)
        reopen.add_argument("--reason", required=True)
        reopen.add_argument("--expected-version", type=int)
        ev = sub.add_parser("evidence", help="Record evidence for one criterion.")
        ev.add_argument("id", type=int)
        ev.add_argument("criterion", help="Criterion key (or stage.criterion).")
        ev.add_argument("note")
        ev.add_argument("--not-holding", action="store_true", help="Record that it does not hold.")

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options["lang"])
        actor = resolve_actor(options["as_user"])
        action = options["action"]
        if action not in {"list", "show"} and not options["as_user"]:
            raise CommandError("Writes need --as USER: every change is recorded with who made it.")
        try:
            result = getattr(self, f"_{action}")(actor, options)
        except GateRefused as exc:
            for missing in exc.missing:
                self.stderr.write(
                    f"  ✗ {missing['stage']}.{missing['key']}: {missing['text']} — {missing['reason']}"
                )
            raise CommandError(exc.message) from None
        except LoudouError as exc:
            raise CommandError(exc.message) from None
        if options["json"]:
            self.stdout.write(dump_json(result))

    def _list(self, actor: Any, o: dict[str, Any]) -> list[dict[str, Any]]:
        rows = [
            summary(opp)
            for opp in opportunity_list(
                actor, status=o["status"], stage=o["stage"], playbook=o["playbook"]
            )[: o["limit"]]
        ]
        if not o["json"]:
            table = Table()
            for col in (
                "id",
                "name",
                "account",
                "owner",
                "stage",
                "status",
                "amount",
                "close_date",
            ):
                table.add_column(col)
            for r in rows:
                table.add_row(
                    *(
                        str(r[c])
                        for c in (
                            "id",
                            "name",
                            "account",
                            "owner",
                            "stage",
                            "status",
                            "amount",
                            "close_date",
                        )
                    )
                )
            Console(file=self.stdout, width=140).print(table)  # type: ignore[arg-type]
        return rows

    def _show(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = opportunity_get(actor, o["id"])
        data = summary(opp) | {"gate": gate_progress(opp)}
        if not o["json"]:
            for key, value in summary(opp).items():
                self.stdout.write(f"{key:12} {value}")
            gate = data["gate"]
            if gate["next_stage"]:
                self.stdout.write(
                    f"next stage  {gate['next_stage']['key']} ({gate['held']}/{gate['required']})"
                )
                for c in gate["criteria"]:
                    mark = "✓" if c["holds"] else "✗"
                    self.stdout.write(f"  {mark} {c['key']}: {c['text']} — {c['reason']}")
        return data

    def _done(self, opp: Any, o: dict[str, Any]) -> dict[str, Any]:
        if not o["json"]:
            self.stdout.write(
                f"{opp.pk} {opp.name}: {opp.stage.key} ({opp.status}), version {opp.version}"
            )
        return summary(opp)

    def _advance(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = ps.opportunity_advance(
            opportunity=o["id"],
            to_stage=o["to_stage"],
            actor=actor,
            evidence=dict(o["evidence"]),
            expected_version=o["expected_version"],
            override_reason=o["override"],
        )
        return self._done(opp, o)

    def _regress(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = ps.opportunity_regress(
            opportunity=o["id"],
            to_stage=o["to_stage"],
            actor=actor,
            reason=o["reason"],
            expected_version=o["expected_version"],
        )
        return self._done(opp, o)

    def _win(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = ps.opportunity_win(
            opportunity=o["id"],
            actor=actor,
            evidence=dict(o["evidence"]),
            override_reason=o["override"],
            expected_version=o["expected_version"],
        )
        return self._done(opp, o)

    def _lose(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = ps.opportunity_lose(
            opportunity=o["id"],
            actor=actor,
            reason=o["reason"],
            note=o["note"],
            lost_to=o["lost_to"],
            expected_version=o["expected_version"],
        )
        return self._done(opp, o)

    def _reopen(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        opp = ps.opportunity_reopen(
            opportunity=o["id"],
            actor=actor,
            reason=o["reason"],
            expected_version=o["expected_version"],
        )
        return self._done(opp, o)

    def _evidence(self, actor: Any, o: dict[str, Any]) -> dict[str, Any]:
        row = ps.evidence_record(
            opportunity=o["id"],
            criterion=o["criterion"],
            actor=actor,
            note=o["note"],
            satisfied=not o["not_holding"],
        )
        if not o["json"]:
            self.stdout.write(f"recorded: {row}")
        return {"criterion": o["criterion"], "satisfied": row.satisfied, "note": row.note}
