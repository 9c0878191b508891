"""Reading a playbook file: YAML with line numbers, validated into a plain `PlaybookSpec`.

Every problem is reported with the file, the line and the field (`stages[3].criteria[2].kind`),
and all problems are collected before anything is written, so a bad file changes nothing.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loudou.playbooks.conditions import ConditionError, parse_condition

KEY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
STAGE_KINDS = {"account", "open", "won"}
CRITERION_KINDS = {"check", "field", "approval"}
FORECAST_CATEGORIES = {"pipeline", "best_case", "commit", "closed", "omitted"}


@dataclass
class Problem:
    """One thing wrong with a playbook file."""

    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class PlaybookFileError(ValueError):
    """A playbook file that cannot be loaded; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Mapping(dict):
    """A YAML mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {k.value: k.start_mark.line + 1 for k, _v in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class CriterionSpec:
    key: str
    kind: str
    text_zh: str
    text_en: str
    condition: str = ""
    required: bool = True


@dataclass
class StageSpec:
    key: str
    kind: str
    name_zh: str
    name_en: str
    definition_zh: str
    definition_en: str
    probability: int
    forecast_category: str
    max_days: int | None
    owners: list[str]
    main_work: list[dict[str, str]]
    criteria: list[CriterionSpec] = field(default_factory=list)
    owners_line: int = 0
    key_line: int = 0


@dataclass
class PlaybookSpec:
    """A validated playbook file, ready to be written."""

    key: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    default: bool
    roles: list[dict[str, str]]
    industries: list[dict[str, str]]
    stages: list[StageSpec]
    digest: str
    source: str


class _Reader:
    """Walks the parsed YAML, collecting problems instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, node: Any, path: str, message: str, key: str | None = None) -> None:
        line = 0
        if isinstance(node, _Mapping):
            line = node.key_lines.get(key, node.line) if key else node.line
        self.problems.append(Problem(self.source, line, path, message))

    def text(self, node: _Mapping, key: str, path: str, *, required: bool = True) -> str:
        value = node.get(key)
        if value is None:
            if required:
                self.problem(node, f"{path}.{key}" if path else key, "is required")
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.problem(node, f"{path}.{key}" if path else key, "must be text", key)
            return ""
        return str(value).strip()

    def bilingual(
        self, node: _Mapping, key: str, path: str, *, required: bool = True
    ) -> tuple[str, str]:
        where = f"{path}.{key}" if path else key
        value = node.get(key)
        if value is None:
            if required:
                self.problem(node, where, "is required ({zh: ..., en: ...})")
            return "", ""
        if not isinstance(value, _Mapping):
            self.problem(node, where, "must be a mapping {zh: ..., en: ...}", key)
            return "", ""
        unknown = set(value) - {"zh", "en"}
        if unknown:
            self.problem(value, where, f"unknown languages {sorted(unknown)} (use zh and en)")
        zh, en = self.text(value, "zh", where), self.text(value, "en", where)
        return zh, en

    def key(self, node: _Mapping, path: str) -> str:
        value = self.text(node, "key", path)
        if value and (not set(value) <= KEY_CHARS or len(value) > 40):
            self.problem(
                node,
                f"{path}.key" if path else "key",
                f"{value!r}: use lower-case letters, digits, - and _ (≤ 40)",
                "key",
            )
        return value

    def check_keys(self, node: _Mapping, path: str, allowed: set[str]) -> None:
        for unknown in sorted(set(node) - allowed):
            self.problem(node, f"{path}.{unknown}" if path else unknown, "unknown field", unknown)

    def items(self, node: _Mapping, key: str, path: str, *, required: bool) -> list[Any]:
        value = node.get(key)
        if value is None:
            if required:
                self.problem(node, f"{path}{key}", "is required (a list)")
            return []
        if not isinstance(value, list):
            self.problem(node, f"{path}{key}", "must be a list", key)
            return []
        return value


def read_playbook(text: str, source: str) -> PlaybookSpec:
    """Parse and validate a playbook file's text; raise PlaybookFileError listing every problem."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise PlaybookFileError(
            [Problem(source, line, "(file)", f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from None
    if not isinstance(data, _Mapping):
        raise PlaybookFileError(
            [Problem(source, 1, "(file)", "must be a mapping with key, name, stages")]
        )
    r = _Reader(source)
    r.check_keys(
        data, "", {"key", "name", "description", "default", "roles", "industries", "stages"}
    )
    key = r.key(data, "")
    name_zh, name_en = r.bilingual(data, "name", "")
    desc_zh, desc_en = r.bilingual(data, "description", "", required=False)
    default = data.get("default", False)
    if not isinstance(default, bool):
        r.problem(data, "default", "must be true or false", "default")
        default = False

    roles = _read_named(r, data, "roles")
    industries = _read_named(r, data, "industries")
    stages = [
        _read_stage(r, node, f"stages[{i}]", order=i + 1)
        for i, node in enumerate(r.items(data, "stages", "", required=True))
        if _is_mapping(r, data, node, f"stages[{i}]")
    ]
    _check_stages(r, data, stages)
    if r.problems:
        raise PlaybookFileError(r.problems)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return PlaybookSpec(
        key=key,
        name_zh=name_zh,
        name_en=name_en,
        description_zh=desc_zh,
        description_en=desc_en,
        default=default,
        roles=roles,
        industries=industries,
        stages=stages,
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        source=source,
    )


def read_playbook_file(path: Path) -> PlaybookSpec:
    """Read a playbook file from disk (UTF-8, with or without BOM)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlaybookFileError([Problem(str(path), 0, "(file)", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise PlaybookFileError(
            [Problem(str(path), 0, "(file)", f"not UTF-8 text: {exc}")]
        ) from None
    except OSError as exc:
        raise PlaybookFileError(
            [Problem(str(path), 0, "(file)", exc.strerror or str(exc))]
        ) from None
    return read_playbook(text, str(path))


def _is_mapping(r: _Reader, parent: _Mapping, node: Any, path: str) -> bool:
    if isinstance(node, _Mapping):
        return True
    r.problem(parent, path, "must be a mapping")
    return False


def _read_named(r: _Reader, data: _Mapping, key: str) -> list[dict[str, str]]:
    out = []
    seen: set[str] = set()
    for i, node in enumerate(r.items(data, key, "", required=False)):
        path = f"{key}[{i}]"
        if not _is_mapping(r, data, node, path):
            continue
        r.check_keys(node, path, {"key", "name"})
        item_key = r.key(node, path)
        if item_key in seen:
            r.problem(node, f"{path}.key", f"{item_key!r} appears twice", "key")
        seen.add(item_key)
        zh, en = r.bilingual(node, "name", path)
        out.append({"key": item_key, "name_zh": zh, "name_en": en})
    return out


def _read_stage(r: _Reader, node: _Mapping, path: str, *, order: int) -> StageSpec:
    r.check_keys(
        node,
        path,
        {
            "key",
            "kind",
            "name",
            "definition",
            "probability",
            "forecast_category",
            "max_days",
            "owners",
            "main_work",
            "criteria",
        },
    )
    key = r.key(node, path)
    kind = r.text(node, "kind", path)
    if kind and kind not in STAGE_KINDS:
        r.problem(node, f"{path}.kind", f"{kind!r}: must be one of {sorted(STAGE_KINDS)}", "kind")
    name_zh, name_en = r.bilingual(node, "name", path)
    def_zh, def_en = r.bilingual(node, "definition", path, required=False)
    probability = node.get("probability", 0)
    if (
        not isinstance(probability, int)
        or isinstance(probability, bool)
        or not 0 <= probability <= 100
    ):
        r.problem(
            node,
            f"{path}.probability",
            f"{probability!r}: a whole percent from 0 to 100",
            "probability",
        )
        probability = -1  # invalid: reported once, left out of the ordering check
    category = node.get("forecast_category") or {"won": "closed"}.get(kind, "pipeline")
    if category not in FORECAST_CATEGORIES:
        r.problem(
            node,
            f"{path}.forecast_category",
            f"{category!r}: one of {sorted(FORECAST_CATEGORIES)}",
            "forecast_category",
        )
    max_days = node.get("max_days")
    if max_days is not None and (
        not isinstance(max_days, int) or isinstance(max_days, bool) or max_days <= 0
    ):
        r.problem(node, f"{path}.max_days", f"{max_days!r}: a positive number of days", "max_days")
        max_days = None
    owners = node.get("owners", [])
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        r.problem(node, f"{path}.owners", "must be a list of role keys", "owners")
        owners = []
    main_work = []
    for i, item in enumerate(r.items(node, "main_work", f"{path}.", required=False)):
        if _is_mapping(r, node, item, f"{path}.main_work[{i}]"):
            r.check_keys(item, f"{path}.main_work[{i}]", {"zh", "en"})
            main_work.append(
                {
                    "zh": r.text(item, "zh", f"{path}.main_work[{i}]"),
                    "en": r.text(item, "en", f"{path}.main_work[{i}]"),
                }
            )
    criteria = []
    seen: set[str] = set()
    for i, item in enumerate(r.items(node, "criteria", f"{path}.", required=False)):
        cpath = f"{path}.criteria[{i}]"
        if not _is_mapping(r, node, item, cpath):
            continue
        criterion = _read_criterion(r, item, cpath, stage_kind=kind)
        if criterion.key in seen:
            r.problem(item, f"{cpath}.key", f"{criterion.key!r} appears twice in the stage", "key")
        seen.add(criterion.key)
        criteria.append(criterion)
    return StageSpec(
        key=key,
        kind=kind,
        name_zh=name_zh,
        name_en=name_en,
        definition_zh=def_zh,
        definition_en=def_en,
        probability=probability,
        forecast_category=category,
        max_days=max_days,
        owners=owners,
        main_work=main_work,
        criteria=criteria,
        owners_line=node.key_lines.get("owners", node.line),
        key_line=node.key_lines.get("key", node.line),
    )


def _read_criterion(r: _Reader, node: _Mapping, path: str, *, stage_kind: str) -> CriterionSpec:
    r.check_keys(node, path, {"key", "kind", "condition", "text", "required"})
    key = r.key(node, path)
    kind = r.text(node, "kind", path)
    if kind and kind not in CRITERION_KINDS:
        r.problem(
            node, f"{path}.kind", f"{kind!r}: must be one of {sorted(CRITERION_KINDS)}", "kind"
        )
    condition = r.text(node, "condition", path, required=False)
    if kind == "field":
        if not condition:
            r.problem(node, f"{path}.condition", "a field criterion needs a condition")
        else:
            subject = "account" if stage_kind == "account" else "opportunity"
            try:
                parse_condition(condition, subject=subject)
            except ConditionError as exc:
                r.problem(node, f"{path}.condition", str(exc), "condition")
    elif condition:
        r.problem(
            node,
            f"{path}.condition",
            f"only field criteria take a condition, not {kind}",
            "condition",
        )
    if stage_kind == "account" and kind in {"check", "approval"}:
        r.problem(
            node, f"{path}.kind", "an account stage's criteria must be field conditions", "kind"
        )
    zh, en = r.bilingual(node, "text", path)
    required = node.get("required", True)
    if not isinstance(required, bool):
        r.problem(node, f"{path}.required", "must be true or false", "required")
        required = True
    return CriterionSpec(
        key=key, kind=kind, text_zh=zh, text_en=en, condition=condition, required=required
    )


def _check_stages(r: _Reader, data: _Mapping, stages: list[StageSpec]) -> None:
    if not stages:
        if "stages" in data:
            r.problem(data, "stages", "needs at least one stage", "stages")
        return
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        if stage.key and stage.key in seen:
            r.problems.append(
                Problem(
                    r.source, stage.key_line, f"stages[{i}].key", f"{stage.key!r} appears twice"
                )
            )
        seen.add(stage.key)
    kinds = [s.kind for s in stages]
    if "account" in kinds and kinds.index("account") != 0:
        r.problem(data, "stages", "an account stage can only be the first stage", "stages")
    if kinds.count("account") > 1:
        r.problem(data, "stages", "at most one account stage", "stages")
    if kinds.count("won") != 1 or kinds[-1] != "won":
        r.problem(data, "stages", "exactly one won stage, and it must be the last", "stages")
    if "open" not in kinds:
        r.problem(data, "stages", "needs at least one open stage", "stages")
    open_probs = [s.probability for s in stages if s.kind == "open" and s.probability >= 0]
    if open_probs != sorted(open_probs):
        r.problem(
            data, "stages", "open stages' probabilities must not decrease down the funnel", "stages"
        )
