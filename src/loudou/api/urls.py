"""Routes under /api/: version 1, and a problem+json 404 for any other path."""

from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.csrf import csrf_exempt

from loudou.api.api import api
from loudou.api.errors import method_not_allowed, not_found


def _problem_on_405(view: Any) -> Any:
    """ninja answers a wrong method with a plain 405; make it a problem."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = [m.strip() for m in response["Allow"].split(",") if m.strip()]
            return method_not_allowed(request, sorted(allowed))
        return response

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]  # ninja checks CSRF itself
    return wrapper


def _v1_patterns() -> tuple[list[URLPattern | URLResolver], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = _problem_on_405(pattern.callback)
    return patterns, app_name, namespace


@csrf_exempt
def _unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any path under /api/ that is not a route: a problem+json 404."""
    return not_found(request)


urlpatterns = [
    path("v1/", _v1_patterns()),
    re_path(r"^(?P<rest>.*)$", _unknown),
]
