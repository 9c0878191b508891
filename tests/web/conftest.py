"""Fixtures for the web pages: a signed-in test client per user of the `org` fixture."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def client_for(org: dict[str, Any]) -> Callable[[str], Client]:
    """client_for("seller") → a Client signed in as that user of `org`, in English."""

    def make(name: str, language: str = "en") -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(org[name])
        return client

    return make


@pytest.fixture
def sh_account(org: dict[str, Any]) -> Any:
    """A target account of the Shanghai seller: deals on it belong to another branch than the
    Beijing users of `org`, so no Beijing page may show them."""
    from loudou.customers.services import account_create
    from tests.conftest import credit_code

    return account_create(
        actor=org["sh_seller"],
        name="上海汽车集团",
        credit_code=credit_code(7),
        industry="manufacturing",
        size_band="large",
        organisations_count=30,
        it_need="集团管控",
        product_fit="财务",
    )
