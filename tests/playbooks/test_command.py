"""`loudou playbook load | show | list`."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.playbooks.models import Playbook, Stage

STAGE_FIELDS = {
    "key",
    "order",
    "kind",
    "name",
    "definition",
    "probability",
    "forecast_category",
    "max_days",
    "owners",
    "main_work",
    "criteria",
}


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("playbook", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_show_json_prints_one_document_with_the_playbooks_shape(playbooks):
    out, err = run("show", "--json")

    data = json.loads(out)
    assert err == ""
    assert set(data) == {"key", "version", "default", "name", "description", "stages"}
    assert (data["key"], data["version"], data["default"]) == ("project-funnel", 1, True)
    assert data["name"] == {"zh": "项目销售漏斗", "en": "Project sales funnel"}
    assert set(data["description"]) == {"zh", "en"}
    assert [s["key"] for s in data["stages"]] == [
        "target",
        "discover",
        "intent",
        "project",
        "recognition",
        "negotiation",
        "closed",
    ]
    for stage in data["stages"]:
        assert set(stage) == STAGE_FIELDS
        assert set(stage["name"]) == set(stage["definition"]) == {"zh", "en"}
        for criterion in stage["criteria"]:
            assert set(criterion) == {"key", "kind", "condition", "required", "text"}
            assert set(criterion["text"]) == {"zh", "en"}


def test_show_json_carries_each_stages_values(playbooks):
    data = json.loads(run("show", "project-funnel", "--json")[0])
    target, discover, project = data["stages"][0], data["stages"][1], data["stages"][3]

    assert {k: target[k] for k in ("order", "kind", "probability", "forecast_category")} == {
        "order": 1,
        "kind": "account",
        "probability": 0,
        "forecast_category": "pipeline",
    }
    assert target["max_days"] is None
    assert target["name"] == {"zh": "定位目标客户群", "en": "Target the customer group"}
    assert target["owners"] == [
        {"key": "account_manager", "name": {"zh": "客户经理", "en": "Account manager"}},
        {"key": "sales_director", "name": {"zh": "销售总监", "en": "Sales director"}},
    ]
    assert target["main_work"] == [
        {"zh": "了解目标市场及行业特点", "en": "Know the target market and its industries' traits"},
        {
            "zh": "按目标客户特征筛选客户",
            "en": "Qualify customers against the target-customer traits",
        },
    ]
    assert target["criteria"][1] == {
        "key": "icp_size",
        "kind": "field",
        "condition": "size_in:large,medium",
        "required": True,
        "text": {"zh": "大中型企业", "en": "A large or medium enterprise"},
    }
    assert (discover["max_days"], discover["probability"]) == (60, 10)
    assert [c["kind"] for c in project["criteria"]].count("approval") == 1
    assert project["criteria"][-1] == {
        "key": "approved",
        "kind": "approval",
        "condition": "",
        "required": True,
        "text": {
            "zh": "立项申请已获公司批准",
            "en": "The project set-up (立项) has been approved by the company",
        },
    }
    assert [s["probability"] for s in data["stages"]] == [0, 10, 25, 40, 60, 80, 100]


def test_show_another_playbook_and_version(playbooks):
    data = json.loads(run("show", "simple", "--version", "1", "--json")[0])

    assert (data["key"], data["version"], data["default"]) == ("simple", 1, False)
    assert [s["key"] for s in data["stages"]] == ["prospecting", "engaging", "won"]


def test_show_as_text_prints_the_names_in_the_chosen_language(playbooks):
    # only --json is a contract; the table's layout may change, its words may not
    english = run("show")[0]
    chinese = run("show", "--lang", "zh-hans")[0]

    assert english.startswith("Project sales funnel  project-funnel v1\n")
    assert chinese.startswith("项目销售漏斗  project-funnel v1\n")
    for zh, en in [
        ("定位目标客户群", "Target the customer group"),
        ("赢得客户认可", "Win the customer's recognition"),
        ("完成销售成交", "Close the sale"),
    ]:
        assert en in english and en not in chinese
        assert zh in chinese and zh not in english


def test_show_an_unknown_playbook_is_an_error(playbooks):
    with pytest.raises(CommandError) as nosuch:
        run("show", "nosuch")
    with pytest.raises(CommandError) as no_version:
        run("show", "simple", "--version", "9")

    assert str(nosuch.value) == "No playbook nosuch."
    assert str(no_version.value) == "No playbook simple v9."


def test_list_json(playbooks):
    rows = json.loads(run("list", "--json")[0])

    assert rows == [
        {
            "key": "project-funnel",
            "version": 1,
            "current": True,
            "default": True,
            "name": {"zh": "项目销售漏斗", "en": "Project sales funnel"},
            "stages": 7,
        },
        {
            "key": "simple",
            "version": 1,
            "current": True,
            "default": False,
            "name": {"zh": "简易销售流程", "en": "Simple sales pipeline"},
            "stages": 3,
        },
    ]


def test_load_builtin_twice_prints_the_same_versions(db):
    first = run("load", "--builtin")[0]
    second = run("load", "--builtin")[0]

    assert first == second == "project-funnel v1\nsimple v1\n"
    assert Playbook.objects.count() == 2


GOOD = """\
key: tiny
name: {zh: 小流程, en: Tiny}
stages:
  - {key: open, kind: open, name: {zh: 进行中, en: Open}, probability: 50}
  - {key: won, kind: won, name: {zh: 赢单, en: Won}, probability: 100}
"""


def test_load_a_file_then_again(playbooks, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD, encoding="utf-8")

    assert run("load", str(path)) == ("tiny: loaded version 1\n", "")
    assert run("load", str(path)) == ("tiny: unchanged, still version 1\n", "")


def test_load_a_bad_file_is_an_error_with_the_problems_on_stderr(playbooks, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("probability: 50", "probability: 150"), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    before = (Playbook.objects.count(), Stage.objects.count())

    with pytest.raises(CommandError) as caught:
        call_command("playbook", "load", str(path), stdout=out, stderr=err)

    assert str(caught.value) == f"{path}: 1 problem(s); nothing was loaded."
    assert (
        err.getvalue() == f"{path}:4: stages[0].probability: 150: a whole percent from 0 to 100\n"
    )
    assert out.getvalue() == ""
    assert (Playbook.objects.count(), Stage.objects.count()) == before


def test_load_without_a_file_is_an_error(playbooks):
    with pytest.raises(CommandError) as caught:
        run("load")

    assert str(caught.value) == "Give a FILE or --builtin."
