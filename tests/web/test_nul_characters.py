"""A NUL character anywhere in a request is refused with 400 before it reaches a query:
PostgreSQL cannot compare text containing one, so it would otherwise be a server error."""

import json
from typing import Any

from loudou.pipeline.models import Opportunity


def test_web_and_api_refuse_a_nul_in_the_query(client_for: Any) -> None:
    client = client_for("seller")
    page = client.get("/board/?q=%00abc")
    assert page.status_code == 400
    assert "Text may not contain the NUL character" in page.content.decode()
    api = client.get("/api/v1/analytics/stalled?branch=%00x")
    assert api.status_code == 400
    assert api["Content-Type"].startswith("application/problem+json")
    assert api.json()["code"] == "bad_request"


def test_a_nul_in_a_body_changes_nothing(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    version = opp.version
    client = client_for("seller")
    form = client.post(
        f"/opportunities/{opp.pk}/edit/",
        {"name": "bad\x00name", "version": str(version)},
    )
    assert form.status_code == 400
    api = client.patch(
        f"/api/v1/opportunities/{opp.pk}",
        data=json.dumps({"name": "bad\u0000name", "expected_version": version}),
        content_type="application/json",
    )
    assert api.status_code == 400
    opp.refresh_from_db()
    assert (opp.name, opp.version) == ("财务共享平台", version)
    assert Opportunity.objects.filter(name__contains="bad").count() == 0


def test_ordinary_requests_pass(client_for: Any) -> None:
    assert client_for("seller").get("/board/?q=100%25").status_code == 200
