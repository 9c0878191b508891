"""Helpers for the Import page tests: the Salesforce export they upload (GBK, with its
OpportunityHistory file), posting it and reading the upload's token back, the mapping form as
the page draws it and the dry run it reruns, and the size of every table an import writes."""

import io
import re
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse

from loudou.customers.models import Account
from loudou.interop.models import ExternalId, ImportRun
from loudou.pipeline.models import Opportunity, OpportunityHistory

OPPORTUNITIES = """\
Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),Amount,Close Date,Created Date,Won,Closed
006A1,华能集团财务共享,华能集团,seller,Prospecting,10,"1,200,000.00",2026/12/31,2026-09-01,0,0
006A2,国网ERP二期,国家电网,seller,Negotiation/Review,90,"3,500,000",2026/11/30,2026-06-15,0,0
006A3,中粮集团预算,中粮集团,teammate,Closed Won,100,800000,2026/10/15,2026-05-10,1,1
006A4,招商局HR,招商局集团,teammate,Id. Decision Makers,60,"450,000",2026/9/30,2026-04-01,0,0
"""
HISTORY = """\
OpportunityId,CreatedDate,StageName,Amount,CloseDate
006A2,2026-06-15 09:00:00,Prospecting,3000000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-10-20 16:00:00,Negotiation/Review,3500000,2026-11-30
"""
NAMES = ["华能集团财务共享", "国网ERP二期", "中粮集团预算", "招商局HR"]


def csv_file(text: str = OPPORTUNITIES, name: str = "opps.csv", encoding: str = "gbk") -> Any:
    data = io.BytesIO(text.encode(encoding))
    data.name = name
    return data


def upload(client: Client, *files: Any, **fields: Any) -> Any:
    data: dict[str, Any] = {"format": "salesforce", "playbook": "project-funnel", **fields}
    data["file"] = files[0] if files else csv_file()
    if len(files) > 1:
        data["history"] = files[1]
    return client.post(reverse("web:import"), data)


def token_of(response: Any) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    match = re.match(r"^/import/([A-Za-z0-9_-]+)/$", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def uploads(settings: Any) -> list[str]:
    root = Path(settings.MEDIA_ROOT) / "imports"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def counts() -> tuple[int, ...]:
    return (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        ExternalId.objects.count(),
        ImportRun.objects.count(),
    )


def stage_form(page: str) -> dict[str, str]:
    """The mapping form's fields as the page draws them (selects with their selected option)."""
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[name] = value
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        first = re.search(r'<option value="([^"]*)"', body)
        fields[name] = (chosen or first).group(1) if (chosen or first) else ""
    return {k: v.replace("&quot;", '"').replace("&amp;", "&") for k, v in fields.items()}


def stage_targets(page: str) -> dict[str, str]:
    """The stage mapping the page shows: the file's stage → the stage chosen."""
    form = stage_form(page)
    count = int(form.get("stage-count", 0))
    return {form[f"stage-{i}-name"]: form[f"stage-{i}-target"] for i in range(count)}


def check(client: Client, token: str, changes: dict[str, str], page: str) -> Any:
    data = {**stage_form(page), **changes}
    return client.post(reverse("web:import-check", args=[token]), data, HTTP_HX_REQUEST="true")
