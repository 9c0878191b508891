"""The answers for a page that does not exist and for a failure of ours.

Django calls these for any URL (not only the web app's), so the API keeps its problem+json
shape. The 500 page stands alone: whatever failed (the database, a template, the navigation
that reads the user's branch) must not fail it again; it shows the request id to quote to
support, which the server log carries on the same request's lines.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import get_template
from django.utils.translation import gettext as _

from loudou.core.requestlog import current_request_id


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: the web app's page (with its navigation for a signed-in user), or a problem."""
    if _is_api(request):
        from loudou.api.errors import problem

        return problem(request, "not_found", _("There is nothing at this address."))
    return render(request, "web/errors/404.html", status=404)


def server_error(request: HttpRequest, *, message: str = "", status: int = 500) -> HttpResponse:
    """500 (or 503 with `message` when the database cannot take writes): a page that reads
    nothing from the database, with the request id."""
    request_id = current_request_id()
    if _is_api(request):
        from loudou.api.errors import problem

        return problem(
            request,
            "internal_error" if status == 500 else "service_unavailable",
            message
            or _("Something went wrong on our side; quote request id %(id)s to support.")
            % {"id": request_id},
            status=status,
            request_id=request_id,
        )
    html = get_template("web/errors/500.html").render(
        {"request_id": request_id, "message": message}
    )
    return HttpResponse(html, status=status)
