"""The yardstick of `bench/load_bench.py`: loudou's WSGI application with one extra route,
`/bench/plain/`, a plain `JsonResponse` of 50 rows read with `.values()`.

It is the "plain JsonResponse endpoint" of the stack probe (shared/research/stack-probe.md) (about 500 req/s with
gunicorn sync on this machine), served by the same gunicorn process, settings and middleware as
the product's pages, so the ratio of a page to it is measured under the same conditions. It is
only for the benchmark (`gunicorn --pythonpath bench load_plain:application`); the product's URL
conf does not have it.

The rows are the names and amounts of the first 50 playbook stages and criteria (reference data
every user sees), not opportunities: the route has no login, so it reads nothing private.
"""

import os

import django
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, JsonResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
django.setup(set_prefix=False)

from loudou import urls as product_urls  # noqa: E402  (after django.setup)
from loudou.playbooks.models import Criterion  # noqa: E402


def plain(request: HttpRequest) -> JsonResponse:
    """50 rows of reference data as JSON: one query, no template, no serializer."""
    rows = list(
        Criterion.objects.order_by("id").values("id", "key", "kind", "required", "stage_id")[:50]
    )
    return JsonResponse({"rows": rows})


urlpatterns = [path("bench/plain/", plain, name="bench-plain"), *product_urls.urlpatterns]


class _Request(WSGIRequest):
    # Django resolves a request against `request.urlconf` when it has one (BaseHandler
    # .resolve_request), and `reverse()` follows it for the rest of the request.
    urlconf = __name__


class _Handler(WSGIHandler):
    request_class = _Request


application = _Handler()
