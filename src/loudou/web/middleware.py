"""Per-user language and time zone, and service errors turned into the right HTTP answer."""

import logging
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.core.database import database_unavailable
from loudou.core.errors import NotFound, PermissionDenied
from loudou.web.views.errors import server_error

logger = logging.getLogger("loudou.database")


class UserPreferencesMiddleware:
    """Activate the signed-in user's language (unless they follow the browser's, which
    LocaleMiddleware has already picked) and time zone for the whole request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            user._managed_memo = {}  # see org.access.managed_branch_ids
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """A NotFound from a selector is a 404 page, a PermissionDenied a 403 page: views need
        not catch them one by one. Hidden and missing objects look the same (rule 4)."""
        if isinstance(exception, NotFound):
            return render(
                request, "web/errors/404.html", {"message": exception.message}, status=404
            )
        if isinstance(exception, PermissionDenied):
            return render(
                request, "web/errors/403.html", {"message": exception.message}, status=403
            )
        if isinstance(exception, DatabaseError):
            # Read-only or full: the administrator's to fix; say so (the log keeps the traceback).
            unavailable = database_unavailable(exception)
            if unavailable is not None:
                logger.error("Database unavailable on %s %s", request.method, request.path,
                             exc_info=exception)  # fmt: skip
                return server_error(request, message=unavailable, status=503)
        return None


def _has_nul(request: HttpRequest) -> bool:
    """A NUL in the (decoded) path, the raw query string or a JSON or form body."""
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith(("application/json", "application/x-www-form-urlencoded")):
        body = request.body
        return b"\x00" in body or b"%00" in body or b"\\u0000" in body
    return False


class RefuseNulCharacters:
    """Refuse, with 400, any request whose path, query or body carries a NUL character.

    PostgreSQL cannot store or compare text containing NUL and raises on it, so such input would
    otherwise become a server error wherever it reaches a query (a filter, a search box, a name).
    No user types one; clients and fuzzers do."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _has_nul(request):
            return self.get_response(request)
        message = _("Text may not contain the NUL character (\\0).")
        if request.path.startswith("/api/"):
            from loudou.api.errors import problem

            return problem(request, "bad_request", message, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
