"""Imports through the API: upload → dry run → mapping → confirm → the run, as the Import page
does it; who may; another user's upload is 404; a refused file imports nothing."""

import io
from pathlib import Path
from typing import Any

import pytest

from loudou.interop import runs
from loudou.pipeline.models import Opportunity
from tests.api.conftest import CALLS

OPPORTUNITIES = """\
Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Amount,Close Date,Created Date
006A1,华能集团财务共享,华能集团,seller,Prospecting,"1,200,000",2026/12/31,2026-09-01
006A2,国网ERP二期,国家电网,seller,Decision Makers,"3,500,000",2026/11/30,2026-06-15
"""


@pytest.fixture(autouse=True)
def _uploads_and_runner(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())  # the run happens in the request


def send(api: Any, method: str, path: str, **kwargs: Any) -> Any:
    """A multipart POST or a JSON PUT with the client's token, recorded for the coverage test."""
    url = f"/api/v1/{path}"
    if method == "put":
        import json

        response = api.client.put(
            url, json.dumps(kwargs["json"]), content_type="application/json", **api.headers
        )
    else:
        response = api.client.post(url, kwargs["data"], **api.headers)
    CALLS.append((method, url, response.status_code))
    return response


def upload(api: Any, text: str = OPPORTUNITIES, **fields: Any) -> Any:
    data = io.BytesIO(text.encode("gbk"))
    data.name = "opps.csv"
    return send(api, "post", "imports", data={"format": "salesforce", "file": data, **fields})


def test_the_whole_journey(org: dict[str, Any], api_for: Any) -> None:
    api = api_for("manager")
    answer = upload(api)
    assert answer.status_code == 201
    dry = answer.json()
    # "Decision Makers" is no name loudou knows and the file gives no probability: refused.
    assert dry["outcome"] == "refused"
    assert [p["reason"] for p in dry["problems"]] == [
        "No stage of project-funnel for the source's stage “Decision Makers”: add it to a "
        "mapping file."
    ]
    assert Opportunity.objects.count() == 0
    token = dry["token"]
    assert api.get(f"imports/{token}").json()["outcome"] == "refused"

    refused = send(api, "post", f"imports/{token}/confirm", data={})
    assert refused.status_code == 422 and Opportunity.objects.count() == 0

    mapped = send(
        api, "put", f"imports/{token}/mapping", json={"stages": {"Decision Makers": "project"}}
    )
    assert mapped.status_code == 200
    assert mapped.json()["outcome"] == "ok"
    assert mapped.json()["report"]["mapping"]["Decision Makers"] == "project"
    assert mapped.json()["report"]["new"] == 2

    started = send(api, "post", f"imports/{token}/confirm", data={})
    assert started.status_code == 202
    run = started.json()
    assert (run["status"], run["report"]["created"]["opportunities"]) == ("done", 2)
    assert sorted(Opportunity.objects.values_list("stage__key", flat=True)) == [
        "discover",
        "project",
    ]
    assert api.get(f"import-runs/{run['id']}").json()["status"] == "done"
    assert [r["id"] for r in api.get("import-runs").json()] == [run["id"]]
    # The upload is gone once imported; confirming again is not a second import.
    assert api.get(f"imports/{token}").status_code == 404
    assert Opportunity.objects.count() == 2


def test_who_may_import(org: dict[str, Any], api_for: Any, anonymous: Any) -> None:
    assert upload(api_for("seller")).status_code == 403
    assert upload(api_for("executive")).status_code == 403
    assert anonymous.get("import-runs").status_code == 401
    token = upload(api_for("manager")).json()["token"]
    assert api_for("admin").get(f"imports/{token}").status_code == 404  # not theirs
    assert api_for("sh_manager").get(f"imports/{token}").status_code == 404
    run = api_for("admin").get("import-runs/999999")
    assert run.status_code == 404
    assert Opportunity.objects.count() == 0


def test_a_manager_cannot_import_another_branchs_deals(org: dict[str, Any], api_for: Any) -> None:
    answer = upload(api_for("sh_manager")).json()
    assert answer["outcome"] == "error"
    assert "manager of every owner's branch" in answer["error"]
    assert Opportunity.objects.count() == 0


def test_bad_options_are_problems_not_errors(org: dict[str, Any], api_for: Any) -> None:
    api = api_for("manager")
    assert upload(api, default_owner="nobody").status_code == 422
    assert upload(api, playbook="nope").status_code == 422
    garbage = io.BytesIO(b"\x00\x01PK\x03\x04 not a workbook")
    garbage.name = "opps.xlsx"
    answer = send(api, "post", "imports", data={"format": "salesforce", "file": garbage})
    assert answer.status_code == 422
    assert answer["Content-Type"].startswith("application/problem+json")


def test_the_template_downloads(org: dict[str, Any], api_for: Any) -> None:
    answer = api_for("manager", "zh-hans").get("imports/template.xlsx")
    assert answer.status_code == 200
    assert answer.content[:2] == b"PK"
