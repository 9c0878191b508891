"""The funnel and analytics pages offer the industry filter and apply it."""

from typing import Any

from tests.analytics.test_industry_filter import deals  # noqa: F401  (the fixture)


def test_the_pages_offer_and_apply_the_industry(deals: dict[str, Any], client_for: Any) -> None:  # noqa: F811
    client = client_for("seller")
    finance = deals["finance"]
    page = client.get(f"/funnel/?industry={finance}").content.decode()
    assert 'name="industry"' in page and f'value="{finance}" selected' in page
    conversion = client.get(f"/analytics/?industry={finance}").content.decode()
    assert f'value="{finance}" selected' in conversion
    body = client.get(f"/funnel/deals/?stage=discover&industry={finance}").content.decode()
    assert "银行财务" in body and "电力财务" not in body
    unknown = client.get("/analytics/?industry=99999").content.decode()
    assert "There is no such industry" in unknown
