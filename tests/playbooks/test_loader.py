"""The built-in playbooks, and playbook files that cannot be loaded."""

from pathlib import Path

import pytest

from loudou.core.models import AuditEvent
from loudou.customers.models import Industry
from loudou.playbooks.loader import PlaybookFileError, read_playbook_file
from loudou.playbooks.models import Criterion, CriterionKind, Playbook, Role, Stage
from loudou.playbooks.services import BUILTIN_DIR, playbook_load_file

# --- the built-in default playbook is the seed's model ---------------------------------------

SEED_STAGES = [
    ("target", "account", "定位目标客户群", "Target the customer group"),
    ("discover", "open", "发掘潜在商机", "Discover potential opportunities"),
    ("intent", "open", "确认客户意向", "Confirm customer intent"),
    ("project", "open", "引导客户立项", "Guide the customer to set up a project"),
    ("recognition", "open", "赢得客户认可", "Win the customer's recognition"),
    ("negotiation", "open", "进行商务谈判", "Business negotiation"),
    ("closed", "won", "完成销售成交", "Close the sale"),
]
SEED_ROLES = [
    ("account_manager", "客户经理", "Account manager"),
    ("sales_director", "销售总监", "Sales director"),
    ("project_manager", "项目经理", "Project manager"),
    ("product_expert", "产品专家", "Product expert"),
    ("industry_expert", "行业专家", "Industry expert"),
    ("presales_consultant", "售前顾问", "Presales consultant"),
    ("implementation_consultant", "实施顾问", "Implementation consultant"),
    ("branch_gm", "分公司总经理", "Branch general manager"),
    ("executive", "公司高层", "Company executive"),
]


def test_the_default_playbook_has_the_seeds_seven_stages_in_order(playbook):
    stages = playbook.ordered_stages()

    assert (playbook.key, playbook.version) == ("project-funnel", 1)
    assert (playbook.is_default, playbook.is_current, playbook.is_builtin) == (True, True, True)
    assert (playbook.name_zh, playbook.name_en) == ("项目销售漏斗", "Project sales funnel")
    assert [(s.key, s.kind, s.name_zh, s.name_en) for s in stages] == SEED_STAGES
    assert [s.order for s in stages] == [1, 2, 3, 4, 5, 6, 7]


def test_each_seed_stage_has_its_criteria(playbook):
    counts = {s.key: s.criteria.count() for s in playbook.ordered_stages()}
    approvals = list(
        Criterion.objects.filter(stage__playbook=playbook, kind=CriterionKind.APPROVAL).values_list(
            "stage__key", "key"
        )
    )

    assert counts == {
        "target": 5,
        "discover": 3,
        "intent": 4,
        "project": 8,
        "recognition": 4,
        "negotiation": 3,
        "closed": 2,
    }
    assert approvals == [("project", "approved")]
    assert (
        list(Criterion.objects.filter(stage__playbook=playbook, required=False).values_list("key"))
        == []
    )


def test_the_icp_criteria_are_field_conditions_on_the_account(playbook):
    target = playbook.ordered_stages()[0]

    assert [(c.key, c.kind, c.condition) for c in target.criteria.order_by("order")] == [
        (
            "icp_industry",
            "field",
            "industry_in:manufacturing,finance,telecom,securities,insurance,power,tobacco,pharma",
        ),
        ("icp_size", "field", "size_in:large,medium"),
        ("icp_group", "field", "multi_org"),
        ("icp_it_need", "field", "has_it_need"),
        ("icp_product_fit", "field", "has_product_fit"),
    ]


def test_the_seed_probabilities_rise_down_the_funnel(playbook):
    stages = playbook.ordered_stages()
    probabilities = [s.probability for s in stages]

    assert probabilities == [0, 10, 25, 40, 60, 80, 100]
    assert [s.probability for s in stages[1:6]] == [10, 25, 40, 60, 80]
    assert stages[4].key == "recognition"
    assert stages[4].probability > 50  # the seed: signing within three months is above 50 %
    assert [s.forecast_category for s in stages] == [
        "pipeline",
        "pipeline",
        "pipeline",
        "pipeline",
        "best_case",
        "commit",
        "closed",
    ]
    assert [s.max_days for s in stages] == [None, 60, 60, 90, 90, 60, None]


def test_every_role_of_the_seed_exists_with_both_names(playbook):
    assert list(Role.objects.values_list("key", "name_zh", "name_en")) == SEED_ROLES
    owners = {s.key: sorted(r.key for r in s.owners.all()) for s in playbook.ordered_stages()}
    assert owners["target"] == ["account_manager", "sales_director"]
    assert owners["negotiation"] == ["executive", "project_manager", "sales_director"]
    assert len(owners["recognition"]) == 8


def _texts(playbook: Playbook) -> list[str]:
    out = [playbook.name_zh, playbook.name_en, playbook.description_zh, playbook.description_en]
    for stage in playbook.ordered_stages():
        out += [stage.name_zh, stage.name_en, stage.definition_zh, stage.definition_en]
        out += [item[lang] for item in stage.main_work for lang in ("zh", "en")]
        out += [t for c in stage.criteria.all() for t in (c.text_zh, c.text_en, c.condition)]
    out += [t for r in Role.objects.all() for t in (r.name_zh, r.name_en)]
    return out


def test_no_text_names_the_seeds_vendor(playbooks):
    texts = [t for p in playbooks.values() for t in _texts(p)]
    files = [
        (BUILTIN_DIR / name).read_text(encoding="utf-8")
        for name in ("project-funnel.yaml", "simple.yaml")
    ]

    assert len(texts) > 200
    for text in [*texts, *files]:
        assert "用友" not in text
        assert "yonyou" not in text.lower()
    # the seller names itself instead
    assert any("我方" in t for t in texts)
    assert any("our product" in t for t in texts)


def test_the_simple_playbook_has_prospecting_engaging_won(playbooks):
    simple = playbooks["simple"]

    assert (simple.version, simple.is_default, simple.is_current) == (1, False, True)
    assert [(s.key, s.kind, s.name_en, s.probability) for s in simple.ordered_stages()] == [
        ("prospecting", "open", "Prospecting", 20),
        ("engaging", "open", "Engaging", 60),
        ("won", "won", "Won", 100),
    ]


def test_the_builtin_files_read_without_problems():
    for name in ("project-funnel.yaml", "simple.yaml"):
        spec = read_playbook_file(BUILTIN_DIR / name)
        assert spec.source == str(BUILTIN_DIR / name)
        assert len(spec.digest) == 64


# --- broken files ----------------------------------------------------------------------------

# A valid playbook; each broken file below changes one numbered line of it.
GOOD = """\
# A small playbook for the tests.
key: broken
name: {zh: 测试流程, en: Test pipeline}
roles:
  - {key: tester, name: {zh: 测试员, en: Tester}}
industries:
  - {key: testing, name: {zh: 测试, en: Testing}}
stages:
  - key: first
    kind: open
    name: {zh: 第一, en: First}
    probability: 20
    owners: [tester]
    criteria:
      - key: called
        kind: check
        text: {zh: 已联系, en: Called}
  - key: second
    kind: open
    name: {zh: 第二, en: Second}
    probability: 50
    owners: [account_manager]
    criteria:
      - key: budget
        kind: field
        condition: "budget > 0"
        text: {zh: 有预算, en: Has a budget}
  - key: won
    kind: won
    name: {zh: 赢单, en: Won}
    probability: 100
    owners: [tester]
"""


def with_line(number: int, text: str) -> str:
    """GOOD with line `number` (1-based) replaced by `text`."""
    lines = GOOD.splitlines()
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def counts() -> dict[str, int]:
    return {
        "playbooks": Playbook.objects.count(),
        "stages": Stage.objects.count(),
        "criteria": Criterion.objects.count(),
        "roles": Role.objects.count(),
        "industries": Industry.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_the_template_of_the_broken_files_is_itself_valid(playbooks, tmp_path):
    playbook, created = playbook_load_file(path=write(tmp_path, GOOD))

    assert (playbook.key, playbook.version, created) == ("broken", 1, True)
    assert playbook.is_builtin is False
    assert playbook.source_name == "broken.yaml"
    assert [s.key for s in playbook.ordered_stages()] == ["first", "second", "won"]
    assert Role.objects.get(key="tester").name_en == "Tester"
    assert Industry.objects.get(key="testing").name_zh == "测试"


BROKEN = [
    pytest.param(
        with_line(19, "   kind: open"),
        [(19, "(file)", "not valid YAML: expected <block end>, but found '<block mapping start>'")],
        id="invalid-yaml",
    ),
    pytest.param(
        with_line(3, "# (no name)"),
        [(2, "name", "is required ({zh: ..., en: ...})")],
        id="missing-name",
    ),
    pytest.param(
        with_line(25, "        kind: formula"),
        [
            (
                25,
                "stages[1].criteria[0].kind",
                "'formula': must be one of ['approval', 'check', 'field']",
            ),
            # the condition it keeps no longer belongs to a field criterion
            (
                26,
                "stages[1].criteria[0].condition",
                "only field criteria take a condition, not formula",
            ),
        ],
        id="unknown-criterion-kind",
    ),
    pytest.param(
        with_line(26, '        condition: "has_unicorn"'),
        [
            (
                26,
                "stages[1].criteria[0].condition",
                "unknown condition 'has_unicorn' for opportunity stages (known: closes_within, has_competitors, "
                "has_key_dates, has_need, has_quote, has_selection_team, has_source, has_team, "
                "has_timeline, target_account)",
            )
        ],
        id="unknown-condition",
    ),
    pytest.param(
        with_line(22, "    owners: [account_manager, wizard]"),
        [(22, "stages[1].owners", "unknown role 'wizard'")],
        id="unknown-owner-role",
    ),
    pytest.param(
        with_line(28, "  - key: first"),
        [(28, "stages[2].key", "'first' appears twice")],
        id="duplicate-stage-keys",
    ),
    pytest.param(
        with_line(29, "    kind: open"),
        [(8, "stages", "exactly one won stage, and it must be the last")],
        id="no-won-stage",
    ),
    pytest.param(
        with_line(12, "    probability: 150"),
        [(12, "stages[0].probability", "150: a whole percent from 0 to 100")],
        id="probability-150",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_a_broken_file_names_file_line_and_field_and_changes_nothing(
    playbooks, tmp_path, text, expected
):
    path = write(tmp_path, text)
    before = counts()

    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=path)

    problems = caught.value.problems
    assert [(p.source, p.line, p.field, p.message) for p in problems] == [
        (str(path), line, field, message) for line, field, message in expected
    ]
    assert str(caught.value) == "\n".join(
        f"{path}:{line}: {field}: {message}" for line, field, message in expected
    )
    assert counts() == before
    assert not Playbook.objects.filter(key="broken").exists()
    assert not Role.objects.filter(key="tester").exists()  # the file's roles are rolled back
    assert not Industry.objects.filter(key="testing").exists()


def test_every_problem_of_a_file_is_reported_at_once(playbooks, tmp_path):
    text = with_line(12, "    probability: 150")
    text = text.replace("        kind: field", "        kind: formula")
    text = text.replace("name: {zh: 测试流程, en: Test pipeline}", "# (no name)")
    before = counts()

    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=write(tmp_path, text))

    assert sorted((p.line, p.field) for p in caught.value.problems) == [
        (2, "name"),
        (12, "stages[0].probability"),
        (25, "stages[1].criteria[0].kind"),
        # a criterion that is not a field criterion must not carry a condition
        (26, "stages[1].criteria[0].condition"),
    ]
    assert counts() == before


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("", 1, "(file)", "must be a mapping with key, name, stages"),
        ("- just\n- a list\n", 1, "(file)", "must be a mapping with key, name, stages"),
        (
            with_line(13, "    owner: [tester]"),
            13,
            "stages[0].owner",
            "unknown field",
        ),
        (
            with_line(10, "    kind: closing"),
            10,
            "stages[0].kind",
            "'closing': must be one of ['account', 'open', 'won']",
        ),
    ],
)
def test_other_broken_files_are_refused_with_their_line(
    playbooks, tmp_path, text, line, field, message
):
    path = write(tmp_path, text)
    before = counts()

    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=path)

    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [(line, field, message)]
    assert counts() == before


def test_a_missing_file_is_a_problem_not_a_crash(playbooks, tmp_path):
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=path)

    assert str(caught.value) == f"{path}:0: (file): no such file"


def test_a_bad_playbook_key_is_refused_at_its_line(playbooks, tmp_path):
    before = counts()

    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=write(tmp_path, with_line(2, "key: Broken Pipeline")))

    assert [(p.line, p.message) for p in caught.value.problems] == [
        (2, "'Broken Pipeline': use lower-case letters, digits, - and _ (≤ 40)")
    ]
    assert counts() == before


def test_a_bad_playbook_key_is_reported_under_the_field_key(playbooks, tmp_path):
    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=write(tmp_path, with_line(2, "key: Broken Pipeline")))

    assert [p.field for p in caught.value.problems] == ["key"]


def test_a_duplicate_stage_key_points_at_the_duplicate(playbooks, tmp_path):
    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=write(tmp_path, with_line(28, "  - key: first")))

    assert [(p.line, p.field) for p in caught.value.problems] == [(28, "stages[2].key")]


def test_an_invalid_probability_is_reported_once(playbooks, tmp_path):
    with pytest.raises(PlaybookFileError) as caught:
        playbook_load_file(path=write(tmp_path, with_line(21, "    probability: 150")))

    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (21, "stages[1].probability", "150: a whole percent from 0 to 100")
    ]
