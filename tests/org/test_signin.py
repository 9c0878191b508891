"""The sign-in throttle: five refused passwords lock an account for fifteen minutes, thirty
from one address lock that address; the right password does not get through while locked."""

import datetime as dt
from typing import Any

from django.contrib.auth import authenticate
from django.test import Client, RequestFactory
from django.utils import timezone

from loudou.core import clock
from loudou.org.models import SignInAttempt
from loudou.org.signin import ACCOUNT_LIMIT, ADDRESS_LIMIT, client_address, signin_wait

RIGHT = "loudou-test-pw-1"


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_refusals_lock_the_account_even_for_the_right_password(org: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    start = timezone.now()
    with clock.frozen_at(start):
        for _ in range(ACCOUNT_LIMIT):
            assert sign_in(client, "seller", "wrong").status_code == 200
        locked = sign_in(client, "seller", RIGHT)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "901"
    assert (
        "Too many refused sign-ins for this account or from this address. Try again in 15 minutes."
        in (locked.content.decode())
    )
    assert client.get("/board/").status_code == 302  # not signed in
    # The throttled try is not counted: five refusals, nothing else.
    assert list(SignInAttempt.objects.values_list("succeeded", flat=True)) == [False] * 5
    # Another account from another address is not affected.
    other = Client()
    assert sign_in(other, "teammate", RIGHT, address="10.0.0.2").status_code == 302
    # Fifteen minutes after the refusals the right password gets in.
    with clock.frozen_at(start + dt.timedelta(minutes=15, seconds=1)):
        assert sign_in(client, "seller", RIGHT)["Location"] == "/"


def test_the_message_is_translated(org: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    for _ in range(ACCOUNT_LIMIT):
        sign_in(client, "seller", "wrong")
    html = sign_in(client, "seller", RIGHT).content.decode()
    assert "登录失败次数过多" in html


def test_a_success_starts_the_count_again(org: dict[str, Any]) -> None:
    client = Client()
    for _ in range(ACCOUNT_LIMIT - 1):
        sign_in(client, "seller", "wrong")
    assert sign_in(client, "seller", RIGHT).status_code == 302
    client.post("/logout/")
    for _ in range(ACCOUNT_LIMIT - 1):
        sign_in(client, "seller", "wrong")
    assert sign_in(client, "seller", RIGHT).status_code == 302


def test_the_account_count_ignores_case_and_spaces(org: dict[str, Any]) -> None:
    client = Client()
    for name in ["Seller", "SELLER", " seller", "seller ", "sElLeR"]:
        sign_in(client, name, "wrong")
    assert signin_wait("seller", "10.9.9.9") is not None


def test_thirty_refusals_from_one_address_lock_that_address(org: dict[str, Any]) -> None:
    client = Client()
    for i in range(ADDRESS_LIMIT):
        sign_in(client, f"nobody{i}", "guess", address="192.0.2.7")
    # The right password of a real account from that address: refused.
    assert sign_in(client, "teammate", RIGHT, address="192.0.2.7").status_code == 429
    # The same account from another address: in.
    assert sign_in(Client(), "teammate", RIGHT, address="192.0.2.8").status_code == 302


def test_the_admin_sign_in_is_throttled_too(org: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for _ in range(ACCOUNT_LIMIT):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": RIGHT})
    assert response.status_code == 200
    assert "Try again in 15 minutes" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_authenticate_records_every_password_try(org: dict[str, Any]) -> None:
    request = RequestFactory().post("/login/", REMOTE_ADDR="203.0.113.5")
    assert authenticate(request, username="seller", password="nope") is None
    assert authenticate(request, username="seller", password=RIGHT) == org["seller"]
    rows = list(
        SignInAttempt.objects.order_by("id").values_list("username", "address", "succeeded")
    )
    assert rows == [("seller", "203.0.113.5", False), ("seller", "203.0.113.5", True)]


def test_the_client_address_behind_proxies(settings: Any) -> None:
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.4")
    settings.LOUDOU_PROXIES = 0
    assert client_address(request) == "10.0.0.9"  # no proxy: the header is the client's word
    settings.LOUDOU_PROXIES = 1
    assert client_address(request) == "198.51.100.4"  # what our proxy saw, not what it was told
    settings.LOUDOU_PROXIES = 2
    assert client_address(request) == "1.1.1.1"
    settings.LOUDOU_PROXIES = 3  # fewer hops than proxies: fall back to the socket
    assert client_address(request) == "10.0.0.9"
