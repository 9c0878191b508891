"""What views share: the sign-in requirement, running a service with its errors shown on the
form, and small request helpers."""

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from loudou.core.errors import Conflict, LoudouError

__all__ = [
    "acting_user",
    "date_param",
    "htmx_redirect",
    "int_param",
    "login_required",
    "require_post",
    "service_errors",
]


def acting_user(request: HttpRequest) -> Any:
    """The signed-in user as a real model instance (request.user is a lazy proxy, which the
    audit trail cannot name the model of)."""
    user = request.user
    user.pk  # noqa: B018 — evaluates the lazy object
    return getattr(user, "_wrapped", user)


def service_errors(error: LoudouError) -> dict[str, Any]:
    """A service error as template context: the message, the per-field details and, for a
    stale write, a note that someone else changed the deal (what the user typed stays)."""
    context: dict[str, Any] = {"error": error.message, "error_code": error.code}
    if isinstance(error, Conflict):
        context["error"] = _(
            "Someone else changed this opportunity while you were editing. Your input is kept "
            "below; reload to see their change, then save again."
        )
    context["field_errors"] = {k: v for k, v in (error.details or {}).items() if isinstance(v, str)}
    return context


def int_param(value: Any) -> int | None:
    """A query or form value as an int, or None when empty or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def date_param(value: Any) -> dt.date | None:
    """A query or form value as an ISO date, or None when empty or not a date."""
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def htmx_redirect(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect a normal request with 302, an htmx one with HX-Redirect (a full page load)."""
    from django.shortcuts import redirect

    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        current, target = urlsplit(request.htmx.current_url or ""), urlsplit(url)  # type: ignore[attr-defined]
        if (current.path, current.query) == (target.path, target.query):
            # Same document with another #fragment: the browser would only scroll, not reload.
            response["HX-Refresh"] = "true"
        else:
            response["HX-Redirect"] = url
        return response
    return redirect(url)


def require_post(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """405 for anything but POST (forms and htmx actions)."""
    from django.views.decorators.http import require_POST

    return wraps(view)(require_POST(view))
