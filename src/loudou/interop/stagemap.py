"""Mapping the source's stage names onto a playbook's stages.

A mapping file (YAML) says it in full:

    playbook: project-funnel
    stages:
      Prospecting: discover          # a stage key of the playbook
      Needs Analysis: intent
      Closed Won: won                # the playbook's won stage, status won
      Closed Lost: lost              # lost in the stage the deal was in
    owners:                          # optional: the source's owner → a loudou username
      Alice Smith: seller
    columns:                         # optional: our field → the file's column header
      amount: Total Amount

Without one (or for names it leaves out) the automatic default maps by name (the stage's key, its
Chinese or English name, the usual words for won and lost), then by probability (the open stage
whose default probability is nearest; 100 % is won), and the dry run shows what it chose, as a
file the user can save, edit and pass back with --mapping."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed
from loudou.playbooks.models import Playbook, StageKind

WON, LOST = "won", "lost"
WON_WORDS = {"closedwon", "won", "win", "赢单", "成交", "已成交", "签约", "已签约", "完成销售成交"}
LOST_WORDS = {"closedlost", "lost", "lose", "输单", "丢单", "已输单", "失败", "关闭丢单"}


def _quote(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, whatever the text holds.
    return json.dumps(text, ensure_ascii=False)


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_/().,'\"“”（）]+", "", name).lower()


@dataclass(frozen=True)
class Target:
    """Where a source stage lands: a stage key and status open; the won stage and status won; or
    status lost with no stage (the deal is lost where it was)."""

    stage_key: str
    status: str

    def label(self) -> str:
        return self.status if self.status in (WON, LOST) else self.stage_key


@dataclass
class StageMapping:
    """The mapping in force for one import: source stage → Target, and how each was chosen
    ("file", "name", "probability")."""

    playbook: Playbook
    targets: dict[str, Target] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    def target(self, stage: str) -> Target | None:
        return self.targets.get(stage) or self.targets.get(stage.strip())

    def as_yaml(self) -> str:
        """The mapping as a file the user can edit and pass back with --mapping."""
        lines = [
            "# " + _("loudou stage mapping: the source's stage → a stage key of the playbook,"),
            "# " + _("or won / lost. Edit and pass it back with --mapping FILE."),
            f"playbook: {self.playbook.key}",
            "stages:",
        ]
        for name, target in self.targets.items():
            how = self.how.get(name, "")
            comment = f"  # {how}" if how else ""
            lines.append(f"  {_quote(name)}: {target.label()}{comment}")
        if self.owners:
            lines.append("owners:")
            for name, username in self.owners.items():
                lines.append(f"  {_quote(name)}: {username}")
        if self.columns:
            lines.append("columns:")
            for key, header in self.columns.items():
                lines.append(f"  {key}: {_quote(header)}")
        return "\n".join(lines) + "\n"


def read_mapping_file(path: Path | str) -> dict[str, Any]:
    """The mapping file's content, checked for shape (not yet against a playbook)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            _("The mapping file %(f)s cannot be read: %(e)s") % {"f": path, "e": exc}
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed(_("The mapping file must be a YAML mapping (key: value lines)."))
    for section in ("stages", "owners", "columns"):
        value = data.get(section) or {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str | int | float) and isinstance(v, str | int | float)
            for k, v in value.items()
        ):
            raise ValidationFailed(
                _("The mapping file's “%(s)s” must map names to names.") % {"s": section}
            )
        data[section] = {str(k).strip(): str(v).strip() for k, v in value.items()}
    return data


def build_mapping(
    playbook: Playbook,
    hints: dict[str, int | None],
    given: dict[str, str] | None = None,
    remembered: dict[str, str] | None = None,
) -> tuple[StageMapping, list[str]]:
    """The mapping for the source stages in `hints` (name → probability or None): the given file's
    entries first, then what the last import from the same source used (`remembered`; entries no
    longer valid for the playbook are passed over), then by name, then by probability. Returns the
    mapping and the problems (a stage of the file the mapping does not know, a source stage
    nothing maps)."""
    stages = playbook.ordered_stages()
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
    keys = {s.key for s in stages if s.kind in (StageKind.OPEN, StageKind.WON)}
    by_name: dict[str, Target] = {}
    for s in stages:
        if s.kind == StageKind.ACCOUNT:
            continue
        target = Target(s.key, WON if s.kind == StageKind.WON else "open")
        for name in (s.key, s.name_en, s.name_zh):
            by_name.setdefault(_norm(name), target)
    mapping = StageMapping(playbook=playbook)
    problems = []
    given = given or {}
    won_key = won_stage.key if won_stage else ""
    for name, value in given.items():
        if value in (WON, won_key):
            target = Target(won_key, WON)
        elif value == LOST:
            target = Target("", LOST)
        elif value in keys:
            target = Target(value, "open")
        else:
            problems.append(
                _(
                    "The mapping sends “%(n)s” to “%(v)s”, which is no stage of %(p)s (use one of: %(k)s)."
                )
                % {
                    "n": name,
                    "v": value,
                    "p": playbook.key,
                    "k": ", ".join([s.key for s in open_stages] + [WON, LOST]),
                }
            )
            continue
        mapping.targets[name], mapping.how[name] = target, "file"
    for name, value in (remembered or {}).items():
        if name in mapping.targets or name not in hints:
            continue
        if value in (WON, won_key) and won_key:
            mapping.targets[name], mapping.how[name] = Target(won_key, WON), "last import"
        elif value == LOST:
            mapping.targets[name], mapping.how[name] = Target("", LOST), "last import"
        elif value in keys:
            mapping.targets[name], mapping.how[name] = Target(value, "open"), "last import"
    for name, probability in hints.items():
        if name in mapping.targets:
            continue
        norm = _norm(name)
        if norm in WON_WORDS or (norm in by_name and by_name[norm].status == WON):
            mapping.targets[name], mapping.how[name] = Target(won_key, WON), "name"
        elif norm in LOST_WORDS or ("lost" in norm and "closed" in norm):
            mapping.targets[name], mapping.how[name] = Target("", LOST), "name"
        elif norm in by_name:
            mapping.targets[name], mapping.how[name] = by_name[norm], "name"
        elif probability is not None and open_stages:
            if probability >= 100 and won_stage:
                target = Target(won_key, WON)
            else:
                nearest = min(
                    open_stages, key=lambda s: (abs(s.probability - probability), s.order)
                )
                target = Target(nearest.key, "open")
            mapping.targets[name] = target
            mapping.how[name] = _("probability %(p)s %%") % {"p": probability}
        else:
            problems.append(
                _("No stage of %(p)s for the source's stage “%(n)s”: add it to a mapping file.")
                % {"p": playbook.key, "n": name}
            )
    return mapping, problems
