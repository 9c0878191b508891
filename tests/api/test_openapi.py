"""The OpenAPI document: valid 3.1 JSON, served with offline docs, and every operation in it
answered 2xx in some test of this package."""

import re
from typing import Any

import pytest
from django.test import Client

from loudou.api.api import api
from tests.api.conftest import CALLS, PARTIAL


def document() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_openapi_document_is_3_1_and_complete(db: Any) -> None:
    doc = document()
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"] == "loudou API"
    assert set(doc["components"]["securitySchemes"]) == {"TokenAuth", "SessionAuth"}
    for path, operations in doc["paths"].items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            assert operation["responses"]["422"]["content"]["application/problem+json"]
            assert operation["security"] == [{"TokenAuth": []}, {"SessionAuth": []}]
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) and "opportunity_advance" in ids
    # Every $ref points to a schema the document defines.
    text = str(doc)
    for name in set(re.findall(r"#/components/schemas/([\w.-]+)", text)):
        assert name in doc["components"]["schemas"], name


def test_docs_are_served_offline(db: Any) -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "/static/ninja/swagger-ui.css" in html
    assert '"validatorUrl": null' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a CDN or remote asset"
    from django.contrib.staticfiles import finders

    assert finders.find("ninja/swagger-ui-bundle.js")
    assert finders.find("ninja/swagger-ui.css")


def template_regex(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(path)) + "$")


def test_every_operation_answered_2xx_in_some_test(db: Any) -> None:
    if PARTIAL or not CALLS:
        pytest.skip("only meaningful when the whole tests/api package runs")
    ok = {(method, path) for method, path, status in CALLS if 200 <= status < 300}
    missing = []
    for path, operations in api.get_openapi_schema(path_prefix="/api/v1/")["paths"].items():
        pattern = template_regex(path)
        for method in operations:
            if not any(m == method and pattern.match(p) for m, p in ok):
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_the_document_has_no_duplicate_keys(db: Any) -> None:
    """JSON parsers keep the last of two equal keys; YAML parsers (Swagger UI reads the
    document with one) refuse it, and the interactive docs stay blank."""
    import json

    duplicates: list[str] = []

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _value in pairs]
        duplicates.extend(key for key in set(keys) if keys.count(key) > 1)
        return dict(pairs)

    body = Client().get("/api/v1/openapi.json").content
    document = json.loads(body, object_pairs_hook=check)
    assert duplicates == []
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in str(
        document["paths"]["/api/v1/exports/opportunities"]["get"]["responses"]["200"]
    )
