"""The REST API: one NinjaAPI with its routers, auth, problem+json errors and offline docs."""

from typing import Any

from ninja import NinjaAPI
from ninja.openapi.docs import Swagger
from ninja.renderers import JSONRenderer

from loudou.api.auth import session_auth, token_auth
from loudou.api.errors import install_handlers
from loudou.api.links import add_links
from loudou.api.routers import accounts, analytics, opportunities, project, reference, targets

DESCRIPTION = """\
The loudou (漏斗) sales funnel over HTTP: the same services, rules and visibility as the web.

**Auth**: a personal API token (`Authorization: Bearer ldt_…`, made under Preferences → API
tokens or with `loudou token create`), or the browser session with the CSRF token on writes.

**Errors** are `application/problem+json` (RFC 9457) with a stable `code`; a refused gate (409
`gate_refused`) lists the `missing` criteria, a stale `expected_version` is 409 `conflict` with
`current_version`, invalid input is 422 `validation_failed` with per-field `errors`.

Amounts are decimal strings, dates ISO 8601. Long lists are paged by `page` and `page_size`
(with the total `count`), or walked with an opaque `cursor` (start with `cursor=`, then pass
each answer's `next_cursor`) that never skips or repeats a row while others are added or
removed.
"""

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error (RFC 9457 problem details).",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:loudou:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What happened, in your language."},
        "code": {"type": "string", "description": "Stable: validation_failed, not_found …"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "location": {"type": "string"},
                },
            },
        },
        "missing": {
            "type": "array",
            "description": "gate_refused: the criteria that do not hold.",
            "items": {"type": "object"},
        },
        "current_version": {"type": "integer", "description": "conflict: the version now."},
    },
}
ERROR_RESPONSES = {
    "400": "The body is not JSON (bad_request), or the cursor is not one of ours (invalid_cursor).",
    "401": "No credentials, or an invalid or revoked token.",
    "403": "Not allowed (or a session write without the CSRF token).",
    "404": "No such object, or one you may not see.",
    "409": "gate_refused (with missing criteria) or conflict (with current_version).",
    "422": "validation_failed, with per-field errors.",
}


class UnescapedJSON(JSONRenderer):
    """JSON with Chinese as characters, not \\u escapes (a third of the size, readable)."""

    json_dumps_params = {"ensure_ascii": False}


class LoudouAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document also describes the problem+json errors and the links
    from a created object to the operations on it, with short operation ids (the handler's
    name: `opportunity_advance`) for generated clients."""

    def get_openapi_operation_id(self, operation: Any) -> str:
        return str(operation.view_func.__name__)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        schema["components"].setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                # ninja keys responses by int, `openapi_extra` by str: 200 and "200" would both
                # be written as "200", a duplicate key that YAML readers (Swagger UI) reject.
                responses: dict[str, Any] = {}
                for status, response in operation.get("responses", {}).items():
                    responses.setdefault(str(status), {}).update(response)
                operation["responses"] = responses
                for status, description in ERROR_RESPONSES.items():
                    responses.setdefault(status, {"description": description, "content": problem})
        add_links(schema)
        return schema


api = LoudouAPI(
    title="loudou API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="loudou-api-v1",
    auth=[token_auth, session_auth],
    renderer=UnescapedJSON(),
    # The bundled Swagger UI (ninja in INSTALLED_APPS → its static files); no validator badge,
    # which would call validator.swagger.io.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
)
install_handlers(api)

api.add_router("/accounts", accounts.router)
api.add_router("/contacts", accounts.contacts)
api.add_router("/opportunities", opportunities.router)
api.add_router("/opportunities", project.router)
api.add_router("/approvals", project.inbox)
api.add_router("/activities", project.activities)
api.add_router("/targets", targets.router)
api.add_router("/playbooks", reference.playbooks)
api.add_router("/analytics", analytics.router)
api.add_router("/imports", "loudou.api.routers.imports.router")
api.add_router("/import-runs", "loudou.api.routers.imports.runs_router")
api.add_router("", reference.reference)
api.add_router("/exports", "loudou.api.routers.exports.router")
api.add_router("/audit-events", "loudou.api.routers.audit.router")
api.add_router("", "loudou.api.routers.learning.router")

__all__ = ["api"]
