"""The sign-in throttle: too many refused passwords for one account, or from one address, and
further tries are refused for a while, even with the right password.

Per account it stops guessing one person's password (5 refusals in 15 minutes, counted since
that account's last successful sign-in); per address it stops one machine trying a common
password on many accounts (30 refusals in 15 minutes). The counts live in the database
(`SignInAttempt`), so every server process sees the same ones. A refused try while throttled is
not counted again: the wait ends 15 minutes after the refusals, whatever the attacker does, and
the real user is not locked out for longer than that.

It is an authentication backend, so the web sign-in, the admin's and anything else that calls
`authenticate()` with a password go through it.
"""

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from loudou.core import clock
from loudou.org.models import SignInAttempt

WINDOW = dt.timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 30


def client_address(request: HttpRequest | None) -> str | None:
    """The caller's address: the socket's, or with `LOUDOU_PROXIES` = n the n-th address from
    the right of X-Forwarded-For (the one our own proxy saw; those left of it are the client's
    word and could be anything)."""
    if request is None:
        return None
    proxies = getattr(settings, "LOUDOU_PROXIES", 0)
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def _normalised(username: str) -> str:
    return username.strip().casefold()[:150]


def signin_wait(username: str, address: str | None) -> dt.timedelta | None:
    """How long `username` from `address` must wait before the next try; None = may try now."""
    now = clock.now()
    since = now - WINDOW
    name = _normalised(username)
    last_success = (
        SignInAttempt.objects.filter(username=name, succeeded=True, at__gt=since)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    account_refusals = list(
        SignInAttempt.objects.filter(username=name, succeeded=False, at__gt=last_success or since)
        .order_by("-at")
        .values_list("at", flat=True)[:ACCOUNT_LIMIT]
    )
    waits = []
    if len(account_refusals) >= ACCOUNT_LIMIT:
        waits.append(account_refusals[-1] + WINDOW - now)
    if address:
        address_refusals = list(
            SignInAttempt.objects.filter(address=address, succeeded=False, at__gt=since)
            .order_by("-at")
            .values_list("at", flat=True)[:ADDRESS_LIMIT]
        )
        if len(address_refusals) >= ADDRESS_LIMIT:
            waits.append(address_refusals[-1] + WINDOW - now)
    return max(waits) if waits else None


def signin_record(username: str, address: str | None, *, succeeded: bool) -> SignInAttempt:
    """Write down one password sign-in (refused or accepted)."""
    return SignInAttempt.objects.create(
        at=clock.now(), username=_normalised(username), address=address, succeeded=succeeded
    )


class ThrottledModelBackend(ModelBackend):
    """Django's user-and-password check, refused while the account or address is throttled;
    every try counted."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get("username", "")
        if not username or password is None:
            return None
        address = client_address(request)
        wait = signin_wait(username, address)
        if wait is not None:
            if request is not None:
                request.signin_wait = wait  # type: ignore[attr-defined]
            # PermissionDenied stops authenticate() trying further backends.
            raise PermissionDenied
        user = super().authenticate(request, username=username, password=password, **kwargs)
        signin_record(username, address, succeeded=user is not None)
        return user


class ThrottleMessageMixin:
    """Say "too many tries, wait N minutes" instead of "wrong password" when throttled."""

    request: HttpRequest | None

    def get_invalid_login_error(self) -> ValidationError:
        wait = getattr(self.request, "signin_wait", None)
        if wait is None:
            return super().get_invalid_login_error()  # type: ignore[misc]
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        return ValidationError(
            ngettext(
                "Too many refused sign-ins for this account or from this address. "
                "Try again in %(minutes)d minute.",
                "Too many refused sign-ins for this account or from this address. "
                "Try again in %(minutes)d minutes.",
                minutes,
            ),
            code="throttled",
            params={"minutes": minutes},
        )


class SignInForm(ThrottleMessageMixin, AuthenticationForm):
    """The web app's sign-in form."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The user name or password is not right. Both are case-sensitive."),
    }


class AdminSignInForm(ThrottleMessageMixin, AdminAuthenticationForm):
    """The settings (Django admin) sign-in form."""
