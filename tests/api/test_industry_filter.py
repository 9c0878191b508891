"""The analytics endpoints take the industry filter like the CLI's --industry."""

from typing import Any

from tests.analytics.test_industry_filter import deals  # noqa: F401  (the fixture)


def test_the_api_takes_an_industry_key(deals: dict[str, Any], api_for: Any) -> None:  # noqa: F811
    api = api_for("seller")
    doc = api.get("analytics/funnel", {"industry": "finance"}).json()
    assert {s["key"]: s["count"] for s in doc["stages"] if s["count"]} == {"discover": 1}
    refused = api.get("analytics/funnel", {"industry": "steel"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_failed"
