"""Win-model inputs and values in the reader's words, one place for the CLI, the API and the web
(stage, industry and size one-hots by their names, never by their keys)."""

from typing import Any

from django.utils.translation import gettext as _

from loudou.core.i18n import localized
from loudou.customers.models import Industry, SizeBand
from loudou.learning.anchored import ANCHOR
from loudou.playbooks.models import Playbook


def shown_value(value: Any) -> str:
    """A feature's value as shown: the yes/no of a flag in the reader's language."""
    if value == "yes":
        return _("yes")
    if value == "no":
        return _("no")
    return str(value)


def feature_label(name: str) -> str:
    """A numeric input's name in words (one-hots: "kind = value" with the raw value)."""
    labels = {
        "probability": _("probability set on the deal"),
        "amount": _("amount"),
        "days_in_stage": _("days in stage"),
        "age": _("days since created"),
        "days_to_close": _("days to expected close"),
        "criteria_satisfied": _("criteria with evidence"),
        "days_since_activity": _("days since last activity"),
        "no_activity": _("no activity done"),
        "competitors": _("competitors named"),
        "in_group": _("account belongs to a group"),
        "owner_win_rate": _("owner's win rate"),
        "branch_win_rate": _("branch's win rate"),
    }
    if name in labels:
        return labels[name]
    kind, _sep, value = name.partition(":")
    kinds = {"stage": _("stage"), "industry": _("industry"), "size": _("size")}
    return f"{kinds.get(kind, kind)} = {value}"


class FeatureWords:
    """A model input's name in words: the stage, industry and size one-hots and the stage rate
    steps with the names the user reads elsewhere (`feature_label` says the numeric ones)."""

    def __init__(self, playbook: Playbook, names: list[str]) -> None:
        self.stages = {s.key: localized(s, "name") for s in playbook.ordered_stages()}
        keys = {n.partition(":")[2] for n in names if n.startswith("industry:")}
        self.industries = (
            {i.key: localized(i, "name") for i in Industry.objects.filter(key__in=keys)}
            if keys
            else {}
        )

    def __call__(self, name: str, stage: str = "", fallback: str | None = None) -> str:
        kind, _sep, value = name.partition(":")
        if name == ANCHOR:
            return _("learned stage rate")
        groups = {"stage": _("stage"), "industry": _("industry"), "size": _("size")}
        if name in groups:  # a group of one-hots, as the feature selection names it
            return groups[name]
        if name == "stage_rate:company":
            return _("deals that reached stage %(s)s") % {"s": self.stages.get(stage, stage)}
        if kind == "stage" and value:
            return _("stage = %(s)s") % {"s": self.stages.get(value, value)}
        if kind == "industry" and value:
            shown = _("not recorded") if value == "-" else self.industries.get(value, value)
            return _("industry = %(s)s") % {"s": shown}
        if kind == "size" and value:
            sizes = {key: str(label) for key, label in SizeBand.choices}
            size = _("not recorded") if value == "-" else sizes.get(value, value)
            return _("size = %(s)s") % {"s": size}
        return fallback if fallback is not None else feature_label(name)
