"""Fixtures for the REST API: clients that call it with a personal token or a browser session,
and a deal of another branch that no Beijing seller may see."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from loudou.api.services import token_create

# (method, path, status) of every call the tests made: test_openapi checks that each operation
# of the OpenAPI document answered a 2xx at least once.
CALLS: list[tuple[str, str, int]] = []


class ApiClient:
    """A test client for /api/v1/ that sends JSON and, when given one, a bearer token."""

    def __init__(self, client: Client, token: str | None = None, language: str = "en") -> None:
        self.client = client
        self.headers: dict[str, str] = {"HTTP_ACCEPT_LANGUAGE": language}
        if token:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def _url(self, path: str) -> str:
        return path if path.startswith("/") else f"/api/v1/{path}"

    def _record(self, method: str, path: str, response: Any) -> Any:
        CALLS.append((method, self._url(path).split("?")[0], response.status_code))
        return response

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        response = self.client.get(self._url(path), params or {}, **self.headers, **extra)
        return self._record("get", path, response)

    def _send(self, method: str, path: str, body: Any, **extra: Any) -> Any:
        response = getattr(self.client, method)(
            self._url(path),
            data=body if isinstance(body, str | bytes) else json.dumps(body),
            content_type="application/json",
            **self.headers,
            **extra,
        )
        return self._record(method, path, response)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self._send("post", path, {} if body is None else body, **extra)

    def patch(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self._send("patch", path, {} if body is None else body, **extra)

    def put(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self._send("put", path, {} if body is None else body, **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        response = self.client.delete(self._url(path), **self.headers, **extra)
        return self._record("delete", path, response)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The coverage check of the OpenAPI operations runs after every other test."""
    last = [i for i in items if i.name == "test_every_operation_answered_2xx_in_some_test"]
    items[:] = [i for i in items if i not in last] + last


def pytest_deselected(items: list[Any]) -> None:
    """A partial run (-k, --deselect) cannot judge coverage."""
    if any("tests/api/" in str(getattr(i, "fspath", "")) for i in items):
        PARTIAL.append(True)


PARTIAL: list[bool] = []


@pytest.fixture
def api_for(org: dict[str, Any]) -> Callable[..., ApiClient]:
    """api_for("seller") → an ApiClient with a fresh personal token of that user (English)."""

    def make(name: str, language: str = "en") -> ApiClient:
        _token, secret = token_create(actor=org[name], name=f"tests {name}")
        return ApiClient(Client(), secret, language)

    return make


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient(Client())


@pytest.fixture
def sh_deal(org: dict[str, Any]) -> Any:
    """An opportunity of the Shanghai seller, on a Shanghai account."""
    import datetime as dt

    from loudou.customers.services import account_create
    from loudou.pipeline.services import opportunity_create
    from tests.conftest import credit_code

    account = account_create(
        actor=org["sh_seller"],
        name="上海汽车集团",
        credit_code=credit_code(7),
        industry="manufacturing",
        size_band="large",
        organisations_count=30,
        it_need="集团管控",
        product_fit="财务",
    )
    return opportunity_create(
        actor=org["sh_seller"],
        account=account,
        name="上汽财务共享",
        amount="800000",
        close_date=timezone.localdate() + dt.timedelta(days=30),
        source="Referral",
        evidence={"need_found": "CFO described the need"},
    )
