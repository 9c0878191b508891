"""URLs for tests/core/test_operations.py: a page and an API operation whose database write
fails as a read-only SQLite database fails."""

from typing import Any

from django.urls import path
from ninja import NinjaAPI

from loudou.api.errors import install_handlers
from tests.core.test_operations import _read_only

api = NinjaAPI(urls_namespace="read-only-test")
install_handlers(api)


@api.post("/write", auth=None)
def write(request: Any) -> Any:
    return _read_only(request)


urlpatterns = [path("write/", _read_only), path("api/v1/", api.urls)]
handler500 = "loudou.web.views.errors.server_error"
