"""`loudou model train|evaluate|explain|accept`: win probabilities learned from the closed deals,
and accepting the stage probabilities they suggest into the playbook."""

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rich.console import Console
from rich.table import Table

from loudou.analytics.scope import iso_date, scope_from_options
from loudou.core.cli import dump_json
from loudou.core.errors import LoudouError
from loudou.learning.selectors import (
    suggested_percent,
    win_explain,
    win_model_active,
    win_model_summary,
)
from loudou.learning.services import win_model_train
from loudou.playbooks.models import Playbook, StageKind
from loudou.playbooks.services import playbook_probabilities_accept

NAMES = {
    "stage_defaults": gettext_lazy("stage defaults (playbook)"),
    "stage_rates": gettext_lazy("stage rates learned (company → branch → person)"),
    "naive_bayes": gettext_lazy("naive Bayes (Odoo-style, final values)"),
    "logistic": gettext_lazy("per-deal model (anchored on the stage rates)"),
    "logistic_uncalibrated": gettext_lazy("per-deal model, uncalibrated"),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--playbook", help="Playbook key (default: the default playbook).")
    parser.add_argument("--as", dest="as_user", help="See only what this user may see.")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    parser.add_argument("--lang", choices=["zh-hans", "en"])


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = "Learn win probabilities from closed deals; compare them with the alternatives; explain."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        train = sub.add_parser("train", help="Fit, calibrate and evaluate a win model.")
        train.add_argument("--cutoff", type=iso_date, help="Fit on deals closed before this day.")
        train.add_argument(
            "--exclude", action="append", default=[], help="Leave a feature out (repeatable)."
        )
        train.add_argument(
            "--horizon",
            type=float,
            help="H in days: fit only on snapshots taken before cutoff − H (default: p80 of the "
            "time from a snapshot to the close; 0: every snapshot before the cutoff).",
        )
        _common(train)
        _common(sub.add_parser("evaluate", help="The stored model's comparison table."))
        explain = sub.add_parser("explain", help="One deal's probability and its top factors.")
        explain.add_argument("opportunity", type=int)
        _common(explain)
        accept = sub.add_parser(
            "accept",
            help="Accept stage probabilities into the playbook as a new version (open deals keep "
            "theirs). Without --stage: every rate the active model suggests, in whole percents.",
        )
        accept.add_argument(
            "--stage",
            action="append",
            default=[],
            type=_stage_percent,
            metavar="KEY=PERCENT",
            help="Set this open stage's probability (repeatable); no confirmation is asked.",
        )
        accept.add_argument(
            "--yes", action="store_true", help="Accept the suggested rates without asking."
        )
        _common(accept)

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_from_options(options)
        if options["action"] == "accept":
            self._accept(scope, options)
            return
        try:
            if options["action"] == "train":
                model = win_model_train(
                    playbook=scope.playbook,
                    actor=scope.actor,
                    cutoff=options["cutoff"],
                    exclude=tuple(options["exclude"]),
                    horizon=options["horizon"],
                )
                data = win_model_summary(model)
            elif options["action"] == "evaluate":
                active = win_model_active(scope.playbook)
                if active is None:
                    raise CommandError(
                        _("No win model is trained for playbook %(p)s: run `loudou model train`.")
                        % {"p": scope.playbook.key}
                    )
                data = win_model_summary(active)
            else:
                data = win_explain(scope.actor, options["opportunity"])
        except LoudouError as exc:
            raise CommandError(exc.message) from None
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        console = Console(file=self.stdout, width=140)  # type: ignore[arg-type]
        if options["action"] == "explain":
            self._explain(console, data)
        else:
            self._table(console, data)

    def _table(self, console: Console, data: dict[str, Any]) -> None:
        table = Table(
            title=_(
                "%(playbook)s — cutoff %(cutoff)s: fit on %(deals)s deals (%(snaps)s snapshots), "
                "evaluated on %(edeals)s later deals (%(esnaps)s snapshots)"
            )
            % {
                "playbook": data["playbook"],
                "cutoff": data["cutoff"][:10],
                "deals": data["training"]["deals"],
                "snaps": data["training"]["snapshots"],
                "edeals": data["evaluation"]["deals"],
                "esnaps": data["evaluation"]["snapshots"],
            },
            title_justify="left",
            caption=_("Brier and log loss: lower is better. AUC: 0.5 is chance."),
            caption_justify="left",
        )
        for label, justify in ((_("Model"), "left"), ("Brier", "right"), (_("Log loss"), "right"),
                               ("AUC", "right")):  # fmt: skip
            table.add_column(label, justify=justify)  # type: ignore[arg-type]
        for name, m in data["models"].items():
            table.add_row(
                str(NAMES.get(name, name)), _f(m["brier"]), _f(m["log_loss"]), _f(m["auc"])
            )
        console.print(table)
        differences = data.get("brier_differences") or {}
        if differences:
            sure = Table(
                title=_(
                    "How sure: Brier differences on the later deals (negative: the first is better)"
                ),
                title_justify="left",
            )
            for label in (_("Comparison"), _("Difference"), _("Interval (90%)"), _("Better in")):
                sure.add_column(label, justify="left" if label == _("Comparison") else "right")
            for key, d in differences.items():
                first, _sep, second = key.partition("_vs_")
                sure.add_row(
                    f"{NAMES.get(first, first)} − {NAMES.get(second, second)}",
                    f"{d['difference']:+.4f}",
                    f"[{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]",
                    f"{d['better_share']:.0%}",
                )
            console.print(sure)
        curve = Table(title=_("Reliability (the per-deal model)"), title_justify="left")
        for label in (_("Bin"), _("Snapshots"), _("Mean predicted"), _("Share won")):
            curve.add_column(label, justify="right")
        for row in data["models"]["logistic"]["reliability"]:
            curve.add_row(row["bin"], str(row["count"]), _f(row["predicted"], 3),
                          _f(row["observed"], 3))  # fmt: skip
        console.print(curve)
        console.print(
            _("Calibration kept: %(m)s. Horizon H: %(h)s days (%(c)s deals censored).")
            % {
                "m": data["calibration"].get("method", "sigmoid"),
                "h": _f(data["horizon_days"], 1),
                "c": data["censored_deals"] if data["censored_deals"] is not None else "—",
            }
        )
        refit = data.get("refit")
        if refit:
            console.print(
                _("Put to use: refitted the same way on the %(n)s deals closed by %(at)s.")
                % {"n": refit["deals"], "at": refit["at"][:10]}
            )
        if data["offered"]:
            console.print(_("The learned per-deal model is offered."))
        else:
            console.print(
                _("The learned per-deal model is not offered; predictions use %(u)s.")
                % {"u": NAMES[data["used"]]}
            )
        if data["dropped_as_leaks"]:
            console.print(
                _("Left out as likely leaks (alone separate won from lost): %(f)s")
                % {"f": ", ".join(f"{k} (AUC {v})" for k, v in data["dropped_as_leaks"].items())}
            )

    def _explain(self, console: Console, data: dict[str, Any]) -> None:
        if data["reason"]:
            console.print(data["reason"])
            console.print(
                _("%(name)s — win probability %(p).0f %% from %(s)s (stage default %(d).0f %%)")
                % {
                    "name": data["name"],
                    "p": data["probability"] * 100,
                    "s": NAMES[data["source"]],
                    "d": data["stage_default"] * 100,
                }
            )
            for factor in data["factors"]:
                console.print(f"  {factor['text']}")
            return
        console.print(
            _("%(name)s — learned win probability %(p).0f %% (stage default %(d).0f %%)")
            % {
                "name": data["name"],
                "p": data["probability"] * 100,
                "d": data["stage_default"] * 100,
            }
        )
        for factor in data["factors"]:
            console.print(f"  {factor['text']}")

    def _accept(self, scope: Any, options: dict[str, Any]) -> None:
        """Show the change, confirm it (suggested rates only), accept it as a new version."""
        current = Playbook.objects.get(key=scope.playbook.key, is_current=True)
        now = {s.key: s.probability for s in current.ordered_stages()}
        suggested: dict[str, dict[str, Any]] = {}
        if options["stage"]:
            wanted = dict(options["stage"])
        else:
            model = win_model_active(current)
            if model is None:
                raise CommandError(
                    _("No win model is trained for playbook %(p)s: run `loudou model train`.")
                    % {"p": current.key}
                )
            suggested = model.parameters.get("suggested_stage_probabilities", {})
            wanted = {
                s.key: suggested_percent(suggested[s.key]["rate"])
                for s in current.ordered_stages()
                if s.kind == StageKind.OPEN and s.key in suggested
            }
            if not wanted:
                raise CommandError(_("The model suggests no probability for an open stage."))
        # With --json stdout holds the JSON document alone: the table goes to stderr, and only
        # when it is shown to confirm.
        confirm = not options["stage"] and not options["yes"]
        console = Console(file=self.stderr if options["json"] else self.stdout, width=140)  # type: ignore[arg-type]
        if confirm or not options["json"]:
            self._proposal(console, current, now, wanted, suggested)
        if confirm:
            self._confirm()
        try:
            accepted = playbook_probabilities_accept(
                playbook=current, actor=scope.actor, probabilities=wanted
            )
        except LoudouError as exc:
            raise CommandError(_one_sentence(exc)) from None
        created = accepted.pk != current.pk
        if options["json"]:
            self.stdout.write(
                dump_json(
                    {
                        "playbook": accepted.key,
                        "version": accepted.version,
                        "created": created,
                        "probabilities": {
                            key: {"before": now[key], "after": value}
                            for key, value in wanted.items()
                        },
                    }
                )
            )
        elif created:
            console.print(
                _(
                    "Accepted as %(key)s v%(version)s: new deals use these probabilities; open "
                    "deals keep those of the version they were created under."
                )
                % {"key": accepted.key, "version": accepted.version}
            )
        else:
            console.print(
                _("Nothing to change: %(key)s v%(version)s already has these probabilities.")
                % {"key": accepted.key, "version": accepted.version}
            )

    def _proposal(
        self,
        console: Console,
        playbook: Playbook,
        now: dict[str, int],
        wanted: dict[str, int],
        suggested: dict[str, dict[str, Any]],
    ) -> None:
        table = Table(
            title=_("%(key)s v%(version)s: stage probabilities (%%)")
            % {"key": playbook.key, "version": playbook.version},
            title_justify="left",
        )
        table.add_column(_("Stage"))
        table.add_column(_("Now"), justify="right")
        table.add_column(_("New"), justify="right")
        if suggested:
            table.add_column(_("Deals that reached it"), justify="right")
            table.add_column(_("Won"), justify="right")
        for key, value in wanted.items():
            row = [key, str(now.get(key, "—")), str(value)]
            if suggested:
                row += [str(suggested[key]["reached"]), str(suggested[key]["won"])]
            table.add_row(*row)
        console.print(table)

    def _confirm(self) -> None:
        """Ask on the terminal; refuse when there is none to ask on."""
        if not sys.stdin.isatty():
            raise CommandError(
                _(
                    "Not accepted: there is no terminal to confirm on; run again with --yes to "
                    "accept these probabilities."
                )
            )
        self.stderr.write(
            _("Accept these probabilities as a new playbook version? [y/N] "), ending=""
        )
        self.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in {"y", "yes", "是"}:
            raise CommandError(_("Not accepted: nothing changed."))


def _stage_percent(text: str) -> tuple[str, int]:
    """`KEY=PERCENT` from the command line (the service checks the key and the range)."""
    key, sep, percent = text.partition("=")
    if not sep or not key.strip() or not percent.strip().lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: write KEY=PERCENT, e.g. discover=12")
    return key.strip(), int(percent)


def _one_sentence(exc: LoudouError) -> str:
    """The refusal with the stages it names, in one line for stderr."""
    if not exc.details or not all(isinstance(v, str) for v in exc.details.values()):
        return exc.message
    named = "; ".join(f"{k.removeprefix('probabilities.')}: {v}" for k, v in exc.details.items())
    return f"{exc.message} ({named})"
