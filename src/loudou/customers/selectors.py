"""Reads of accounts: ICP fit, group hierarchy."""

from typing import Any

from loudou.core.i18n import localized
from loudou.customers.models import Account
from loudou.playbooks.conditions import evaluate, parse_condition
from loudou.playbooks.models import Playbook, StageKind


def icp_fit(account: Account, playbook: Playbook) -> list[dict[str, Any]]:
    """Each stage-1 criterion of `playbook` for `account`: key, text, holds, reason, required.

    A playbook with no account stage has no ICP: the list is empty and every account fits.
    """
    stages = [s for s in playbook.ordered_stages() if s.kind == StageKind.ACCOUNT]
    if not stages:
        return []
    out = []
    for criterion in sorted(stages[0].criteria.all(), key=lambda c: c.order):
        verdict = evaluate(parse_condition(criterion.condition, subject="account"), account)
        out.append(
            {
                "key": criterion.key,
                "text": localized(criterion, "text"),
                "holds": verdict.holds,
                "reason": verdict.reason,
                "required": criterion.required,
            }
        )
    return out


def account_group_tree(account: Account) -> list[tuple[int, Account]]:
    """The whole group `account` belongs to, from its top, as (depth, account) in tree order."""
    top = account
    seen = {top.pk}
    while top.parent_id and top.parent_id not in seen:
        top = top.parent  # type: ignore[assignment]
        seen.add(top.pk)
    out: list[tuple[int, Account]] = []

    def walk(node: Account, depth: int) -> None:
        out.append((depth, node))
        for child in node.subsidiaries.order_by("name", "id"):
            if child.pk not in {a.pk for _d, a in out}:
                walk(child, depth + 1)

    walk(top, 0)
    return out
