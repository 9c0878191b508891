"""`/healthz`: what a load balancer or an orchestrator asks before sending users here.

200 when the database answers and every migration the code knows is applied; 503 otherwise,
with which of the two failed. It reads nothing a visitor could not know (no counts, no names),
so it needs no sign-in.
"""

import time
from typing import Any

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

import loudou

# Once every migration is applied it stays so until the code changes, which restarts the
# process: checking again on every probe would load the migration graph each time (~50 ms).
_migrated = False


def _migrations_pending() -> int:
    global _migrated
    if _migrated:
        return 0
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    _migrated = pending == 0
    return pending


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database reachable and migrations applied: 200 `{"status": "ok", ...}`, else 503."""
    started = time.perf_counter()
    checks: dict[str, Any] = {"version": loudou.__version__}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
        pending = _migrations_pending()
        checks["migrations"] = "ok" if pending == 0 else f"{pending} not applied"
    except DatabaseError as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
        checks["migrations"] = "unknown"
    healthy = checks["database"] == "ok" and checks["migrations"] == "ok"
    checks["status"] = "ok" if healthy else "unavailable"
    checks["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(checks, status=200 if healthy else 503)
