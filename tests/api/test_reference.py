"""Playbooks in both languages, catalogues and the caller."""

from typing import Any


def test_playbooks_in_both_languages(api_for: Any, playbook: Any) -> None:
    seller = api_for("seller")
    listed = seller.get("playbooks").json()
    assert {p["key"] for p in listed} == {"project-funnel", "simple"}
    body = seller.get("playbooks/project-funnel").json()
    assert body["version"] == playbook.version and body["default"] is True
    stages = body["stages"]
    assert [s["key"] for s in stages][:3] == ["target", "discover", "intent"]
    intent = next(s for s in stages if s["key"] == "intent")
    assert (
        intent["name"]["zh"]
        and intent["name"]["en"]
        and intent["name"]["zh"] != intent["name"]["en"]
    )
    assert all(c["text"]["zh"] and c["text"]["en"] for c in intent["criteria"])
    assert seller.get("playbooks/project-funnel", {"version": playbook.version}).status_code == 200
    assert seller.get("playbooks/nope").status_code == 404
    assert seller.get("playbooks/project-funnel", {"version": 99}).status_code == 404


def test_catalogues(api_for: Any, playbook: Any) -> None:
    seller = api_for("seller")
    assert {"key": "price", "name": "Price not competitive"} in seller.get("lost-reasons").json()
    roles = api_for("seller", "zh-hans").get("roles").json()
    assert {"key": "presales_consultant", "name": "售前顾问"} in roles
    assert {"key": "manufacturing", "name": "Manufacturing"} in seller.get("industries").json()


def test_me(api_for: Any, org: dict[str, Any]) -> None:
    response = api_for("manager").get("me")
    assert "北京分公司" in response.content.decode()  # Chinese as characters, not \u escapes
    body = response.json()
    assert body == {
        "id": org["manager"].pk,
        "username": "manager",
        "name": "manager",
        "access_level": "manager",
        "branch": {"id": org["beijing"].pk, "code": "bj", "name": "北京分公司"},
        "job_role": {"key": "branch_gm", "name": "Branch general manager"},
        "language": "",
        "time_zone": "Asia/Shanghai",
    }


def test_colleagues_and_branches(api_for: Any, org: dict[str, Any]) -> None:
    seller = api_for("seller", "zh-hans")
    people = {u["username"]: u for u in seller.get("users").json()}
    assert people["teammate"]["job_role"] == {"key": "presales_consultant", "name": "售前顾问"}
    assert people["teammate"]["branch"]["code"] == "bj"
    assert people["sh_manager"]["access_level"] == "manager"
    branches = {b["code"]: b for b in seller.get("branches").json()}
    assert branches["bj"]["parent_id"] == org["north"].pk
    assert branches["hq"]["parent_id"] is None
