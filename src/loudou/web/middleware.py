"""Per-user language and time zone, and service errors turned into the right HTTP answer."""

import zoneinfo
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation

from loudou.core.errors import NotFound, PermissionDenied


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
        return None
