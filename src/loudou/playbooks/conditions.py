"""The small language of `field` criteria: conditions on an account (stage 1) or an opportunity.

A condition is `name`, `name:arg,arg` or `metric op number`, for example `multi_org`,
`industry_in:manufacturing,finance`, `has_quote:preliminary`, `budget > 0`, `days_to_close <= 90`.
`parse_condition` validates one when a playbook loads; `evaluate` answers it with a reason in the
active language, so a refused gate or an ICP fit can say why.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.i18n import join_list


@dataclass(frozen=True)
class Parsed:
    """A parsed condition: a predicate name with arguments, or a metric comparison."""

    name: str
    args: tuple[str, ...] = ()
    op: str | None = None
    number: Decimal | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a condition holds, and why, in the user's language."""

    holds: bool
    reason: str


class ConditionError(ValueError):
    """A condition that does not parse or names something unknown."""


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_COMPARISON = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_PREDICATE = re.compile(r"^\s*([a-z_]+)\s*(?::\s*([a-z0-9_,\s-]+))?\s*$")

ACCOUNT_PREDICATES = {"industry_in", "size_in", "multi_org", "has_it_need", "has_product_fit"}
OPPORTUNITY_PREDICATES = {
    "target_account",
    "has_need",
    "has_source",
    "has_quote",
    "has_selection_team",
    "has_competitors",
    "has_timeline",
    "has_key_dates",
    "has_team",
    "closes_within",
}
NEEDS_ARGS = {"industry_in", "size_in", "has_quote", "has_key_dates", "closes_within"}
OPPORTUNITY_METRICS = {"amount", "budget", "days_to_close", "team_size"}


def parse_condition(text: str, *, subject: str) -> Parsed:
    """Parse `text` for a subject ("account" or "opportunity"); raise ConditionError if invalid."""
    comparison = _COMPARISON.match(text or "")
    if comparison:
        metric, op, number = comparison.groups()
        if subject != "opportunity" or metric not in OPPORTUNITY_METRICS:
            known = ", ".join(sorted(OPPORTUNITY_METRICS))
            raise ConditionError(f"unknown metric {metric!r} (known: {known})")
        return Parsed(name=metric, op=op, number=Decimal(number))
    predicate = _PREDICATE.match(text or "")
    if not predicate:
        raise ConditionError(f"cannot read condition {text!r}")
    name, raw_args = predicate.groups()
    known_names = ACCOUNT_PREDICATES if subject == "account" else OPPORTUNITY_PREDICATES
    if name not in known_names:
        raise ConditionError(
            f"unknown condition {name!r} for {subject} stages (known: {', '.join(sorted(known_names))})"
        )
    args = tuple(a.strip() for a in (raw_args or "").split(",") if a.strip())
    if name in NEEDS_ARGS and not args:
        raise ConditionError(f"condition {name!r} needs arguments, e.g. {name}:a,b")
    if name == "has_quote" and args[0] not in {"preliminary", "formal"}:
        raise ConditionError("has_quote takes preliminary or formal")
    if name == "has_key_dates":
        bad = set(args) - {"bid", "negotiation", "signing"}
        if bad:
            raise ConditionError(
                f"has_key_dates takes bid, negotiation, signing; not {sorted(bad)}"
            )
    if name == "closes_within" and not (len(args) == 1 and args[0].isdigit()):
        raise ConditionError("closes_within takes a number of days, e.g. closes_within:90")
    if name == "size_in":
        bad = set(args) - {"large", "medium", "small", "micro"}
        if bad:
            raise ConditionError(f"size_in takes large, medium, small, micro; not {sorted(bad)}")
    return Parsed(name=name, args=args)


def evaluate(parsed: Parsed, subject: Any) -> Verdict:
    """Answer a parsed condition for an Account or an Opportunity."""
    if parsed.op is not None:
        return _compare(parsed, subject)
    return _PREDICATE_FUNCS[parsed.name](subject, parsed.args)


# --- account predicates -------------------------------------------------------------------


def _industry_in(account: Any, args: tuple[str, ...]) -> Verdict:
    industry = account.industry
    if industry is None:
        return Verdict(False, _("Industry not recorded."))
    if industry.key in args:
        return Verdict(True, _("Industry %(name)s is a target industry.") % {"name": industry})
    return Verdict(False, _("Industry %(name)s is not a target industry.") % {"name": industry})


def _size_in(account: Any, args: tuple[str, ...]) -> Verdict:
    if not account.size_band:
        return Verdict(False, _("Size not recorded."))
    label = account.get_size_band_display()
    if account.size_band in args:
        return Verdict(True, _("Size: %(size)s.") % {"size": label})
    from loudou.customers.models import SizeBand

    wanted = _(" or ").join(str(SizeBand(a).label).lower() for a in args)
    return Verdict(False, _("Size: %(size)s, not %(wanted)s.") % {"size": label, "wanted": wanted})


def _multi_org(account: Any, args: tuple[str, ...]) -> Verdict:
    subsidiaries = account.subsidiaries.count() if account.pk else 0
    total = max(account.organisations_count or 0, subsidiaries + 1)
    if total >= 2:
        return Verdict(
            True,
            _("A group with %(n)s organisations or sites (%(s)s subsidiaries recorded).")
            % {"n": total, "s": subsidiaries},
        )
    return Verdict(False, _("A single organisation and site."))


def _has_note(
    field: str, present: Callable[[], str], missing: Callable[[], str]
) -> Callable[[Any, tuple[str, ...]], Verdict]:
    def check(account: Any, args: tuple[str, ...]) -> Verdict:
        note = (getattr(account, field) or "").strip()
        if note:
            return Verdict(True, present() % {"note": note[:80]})
        return Verdict(False, missing())

    return check


def related(obj: Any, name: str) -> list[Any]:
    """The rows of a reverse relation of `obj`: the list `pipeline.gates.prefetch_gate_data` left
    in `gate_<name>` when it loaded many deals at once, else one query."""
    cached = getattr(obj, f"gate_{name}", None)
    if cached is not None:
        return cached
    return list(getattr(obj, name).all())


# --- opportunity predicates ---------------------------------------------------------------


def _target_account(opp: Any, args: tuple[str, ...]) -> Verdict:
    if opp.account.is_target:
        return Verdict(True, _("%(account)s is a target account.") % {"account": opp.account})
    return Verdict(False, _("%(account)s is not a target account.") % {"account": opp.account})


def _has_text(field: str, label: Callable[[], str]) -> Callable[[Any, tuple[str, ...]], Verdict]:
    def check(opp: Any, args: tuple[str, ...]) -> Verdict:
        if (getattr(opp, field) or "").strip():
            return Verdict(True, _("%(what)s recorded.") % {"what": label()})
        return Verdict(False, _("%(what)s not recorded.") % {"what": label()})

    return check


def _has_quote(opp: Any, args: tuple[str, ...]) -> Verdict:
    from loudou.pipeline.models import QuoteLineCategory

    kind = args[0]
    submitted = (
        [q for q in related(opp, "quotes") if q.kind == kind and q.submitted_at is not None]
        if opp.pk
        else []
    )
    quote = max(submitted, key=lambda q: q.version) if submitted else None
    if quote is None:
        if kind == "preliminary":
            return Verdict(False, _("No preliminary quote has been submitted."))
        return Verdict(False, _("No formal quote has been submitted."))
    categories = {line.category for line in related(quote, "lines")}
    if kind == "preliminary":
        missing = [c.label for c in QuoteLineCategory if c.value not in categories]
        if missing:
            return Verdict(
                False,
                _("The preliminary quote v%(v)s has no lines for: %(missing)s.")
                % {"v": quote.version, "missing": join_list([str(m) for m in missing])},
            )
    return Verdict(True, _("%(quote)s submitted.") % {"quote": quote})


def _has_selection_team(opp: Any, args: tuple[str, ...]) -> Verdict:
    parts = {c.selection_part for c in related(opp.account, "contacts") if c.selection_part}
    if "decision_maker" in parts:
        return Verdict(True, _("Selection team recorded, with a decision maker."))
    if parts:
        return Verdict(False, _("Selection team recorded, but no decision maker."))
    return Verdict(False, _("No contact of the account is on the selection team."))


def _has_competitors(opp: Any, args: tuple[str, ...]) -> Verdict:
    n = len(related(opp, "competitors")) if opp.pk else 0
    if n:
        return Verdict(True, _("%(n)s competitors or consultants recorded.") % {"n": n})
    return Verdict(False, _("No competitor or consultant recorded."))


def _has_timeline(opp: Any, args: tuple[str, ...]) -> Verdict:
    n = len(related(opp, "key_dates")) if opp.pk else 0
    if n:
        return Verdict(True, _("%(n)s key dates planned.") % {"n": n})
    return Verdict(False, _("No key date planned."))


def _has_key_dates(opp: Any, args: tuple[str, ...]) -> Verdict:
    from loudou.pipeline.models import KeyDateKind

    planned = {k.kind for k in related(opp, "key_dates")} if opp.pk else set()
    missing = [str(KeyDateKind(k).label) for k in args if k not in planned]
    if missing:
        return Verdict(False, _("Key dates not planned: %(m)s.") % {"m": join_list(missing)})
    return Verdict(True, _("Key dates planned."))


def _has_team(opp: Any, args: tuple[str, ...]) -> Verdict:
    n = len(related(opp, "team_members")) if opp.pk else 0
    if n:
        return Verdict(True, _("Project team of %(n)s.") % {"n": n})
    return Verdict(False, _("No project team yet."))


def _closes_within(opp: Any, args: tuple[str, ...]) -> Verdict:
    days = (opp.close_date - clock.today()).days
    limit = int(args[0])
    if days < 0:
        return Verdict(
            False,
            _("The expected close date %(d)s has passed; set a new one.") % {"d": opp.close_date},
        )
    if days <= limit:
        return Verdict(True, _("Expected to close in %(n)s days.") % {"n": days})
    return Verdict(
        False,
        _("Expected to close in %(n)s days, not within %(limit)s.") % {"n": days, "limit": limit},
    )


def _metric(opp: Any, name: str) -> Decimal | None:
    if name == "amount":
        return opp.amount
    if name == "budget":
        return opp.budget
    if name == "days_to_close":
        return Decimal((opp.close_date - clock.today()).days)
    if name == "team_size":
        return Decimal(len(related(opp, "team_members")) if opp.pk else 0)
    raise ConditionError(name)


def _compare(parsed: Parsed, opp: Any) -> Verdict:
    value = _metric(opp, parsed.name)
    labels = {
        "amount": _("Amount"),
        "budget": _("Budget"),
        "days_to_close": _("Days to the expected close"),
        "team_size": _("Project team size"),
    }
    label = labels[parsed.name]
    if value is None:
        return Verdict(False, _("%(what)s not recorded.") % {"what": label})
    assert parsed.op is not None
    holds = _OPS[parsed.op](value, parsed.number)
    shown = f"{value:,}" if parsed.name in {"amount", "budget"} else str(value)
    return Verdict(holds, f"{label}: {shown} ({parsed.op} {parsed.number})")


_PREDICATE_FUNCS: dict[str, Callable[[Any, tuple[str, ...]], Verdict]] = {
    "industry_in": _industry_in,
    "size_in": _size_in,
    "multi_org": _multi_org,
    "has_it_need": _has_note(
        "it_need",
        lambda: _("IT need: %(note)s"),
        lambda: _("No need for IT to improve management recorded."),
    ),
    "has_product_fit": _has_note(
        "product_fit",
        lambda: _("Product fit: %(note)s"),
        lambda: _("No fit with our product recorded."),
    ),
    "target_account": _target_account,
    "has_need": _has_text("need", lambda: _("The need")),
    "has_source": _has_text("source", lambda: _("The source")),
    "has_quote": _has_quote,
    "has_selection_team": _has_selection_team,
    "has_competitors": _has_competitors,
    "has_timeline": _has_timeline,
    "has_key_dates": _has_key_dates,
    "has_team": _has_team,
    "closes_within": _closes_within,
}
