"""Every error of the API as `application/problem+json` (RFC 9457).

A problem has `type` (a URN naming the `code`), `title` (the code in words), `status`, `detail`
(what happened, in the caller's language), `code` (stable, for programs), `instance` (the path
asked for) and, where they apply, `errors` (one per field: `field`, `message`, and `location`
for request-schema errors), `missing` (the criteria a refused gate lacks) and
`current_version` (on a stale `expected_version`).
"""

import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from loudou.core.database import database_unavailable
from loudou.core.errors import Conflict, GateRefused, LoudouError

logger = logging.getLogger("loudou.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:loudou:problem:{code}"

# The HTTP status of each stable code. A gate refusal and a stale version are both conflicts
# with the opportunity's current state (409); `code` tells them apart.
STATUS = {
    "bad_request": 400,
    "invalid_cursor": 400,
    "not_authenticated": 401,
    "invalid_token": 401,
    "permission_denied": 403,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "gate_refused": 409,
    "validation_failed": 422,
    "throttled": 429,
    "internal_error": 500,
    "service_unavailable": 503,
}


def problem_titles() -> dict[str, str]:
    """Each code in a few words, in the active language."""
    return {
        "bad_request": _("Bad request"),
        "invalid_cursor": _("Invalid cursor"),
        "not_authenticated": _("Not signed in"),
        "invalid_token": _("Invalid API token"),
        "permission_denied": _("Not allowed"),
        "csrf_failed": _("CSRF check failed"),
        "not_found": _("Not found"),
        "method_not_allowed": _("Method not allowed"),
        "conflict": _("Changed by someone else"),
        "gate_refused": _("Stage criteria not met"),
        "validation_failed": _("Invalid input"),
        "throttled": _("Too many requests"),
        "internal_error": _("Internal error"),
        "service_unavailable": _("Database unavailable"),
    }


def problem(
    request: HttpRequest,
    code: str,
    detail: str,
    *,
    status: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> HttpResponse:
    """A problem+json response for `code`."""
    status = status or STATUS.get(code, 400)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": problem_titles().get(code, code),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, cls=DjangoJSONEncoder),
        status=status,
        content_type=f"{PROBLEM_MEDIA_TYPE}; charset=utf-8",
    )
    response["Content-Language"] = get_language()
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="loudou"'
    return response


def service_error(request: HttpRequest, exc: LoudouError) -> HttpResponse:
    """A refusal of a service (ValidationFailed, PermissionDenied, NotFound, Conflict,
    GateRefused) with its details."""
    extra: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    if isinstance(exc, GateRefused):
        extra["missing"] = exc.missing
    elif isinstance(exc, Conflict):
        extra["current_version"] = exc.current_version
    else:
        errors = [
            {"field": str(field), "message": str(message)}
            for field, message in (exc.details or {}).items()
            if isinstance(message, str | int | float)
        ]
    code = exc.code if exc.code in STATUS else "bad_request"
    return problem(request, code, exc.message, errors=errors, **extra)


def _field_name(loc: list[Any] | tuple[Any, ...]) -> tuple[str, str]:
    """(location, field) from a ninja error location such as ("body", "payload", "name")."""
    parts = [str(p) for p in loc]
    location = parts[0] if parts else ""
    rest = parts[1:]
    # Body parameters are nested under the handler's argument name: drop it.
    if location == "body" and len(rest) > 1:
        rest = rest[1:]
    return location, ".".join(rest)


def request_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """The request did not match the schema (ninja's validation): 422 with one entry per field."""
    errors = []
    for error in exc.errors:
        location, field = _field_name(error.get("loc", ()))
        errors.append({"field": field, "location": location, "message": str(error.get("msg"))})
    return problem(
        request,
        "validation_failed",
        _("The request does not match the API schema; see errors."),
        errors=errors,
    )


def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own errors: missing or invalid credentials, CSRF, unreadable bodies, throttling."""
    if isinstance(exc, AuthenticationError):
        if exc.message == "Unauthorized":  # ninja's default: no credentials at all
            return problem(
                request,
                "not_authenticated",
                _("Sign in, or send a personal API token as “Authorization: Bearer <token>”."),
            )
        return problem(request, "invalid_token", exc.message)
    if exc.status_code == 403 and "CSRF" in exc.message:
        return problem(
            request,
            "csrf_failed",
            _(
                "A signed-in browser session must send the CSRF token (X-CSRFToken header) "
                "with every write."
            ),
        )
    if exc.status_code == 400:
        return problem(request, "bad_request", _("The request body is not valid JSON."))
    if exc.status_code == 429:
        return problem(request, "throttled", _("Too many requests; try again later."))
    code = {403: "permission_denied", 404: "not_found"}.get(exc.status_code, "bad_request")
    return problem(request, code, exc.message, status=exc.status_code)


def not_found(request: HttpRequest, exc: Exception | None = None) -> HttpResponse:
    """A path the API does not have, or an object the caller may not see."""
    return problem(request, "not_found", _("Nothing here: no such resource."))


def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A bug: logged with its traceback, answered without internals. A database that cannot
    take writes (read-only, disk full) is not a bug: 503, saying so."""
    logger.exception("API error on %s %s", request.method, request.path, exc_info=exc)
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        return problem(request, "service_unavailable", unavailable)
    return problem(
        request, "internal_error", _("Something went wrong on our side; it has been logged.")
    )


def install_handlers(api: NinjaAPI) -> None:
    """Make every error the API answers a problem+json."""
    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (LoudouError, service_error),
        (ValidationError, request_invalid),
        (HttpError, http_error),
        (Http404, not_found),
        (
            DjangoPermissionDenied,
            lambda request, exc: problem(request, "permission_denied", _("Not allowed.")),
        ),
        (Exception, unexpected),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> HttpResponse:
    """405 with the Allow header, as a problem."""
    response = problem(
        request,
        "method_not_allowed",
        _("%(method)s is not allowed here; use %(allowed)s.")
        % {"method": request.method, "allowed": ", ".join(allowed)},
    )
    response["Allow"] = ", ".join(allowed)
    return response
