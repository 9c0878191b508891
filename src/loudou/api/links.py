"""OpenAPI links: how the id an operation creates feeds the operations on that object.

`POST /accounts` answers the new account, whose `id` is the `account_id` of
`GET /accounts/{account_id}`, `PATCH …`, `…/contacts`, and the `account_id` of the body of
`POST /opportunities`; `POST /opportunities` feeds every `/opportunities/{opportunity_id}/…`
operation, and so on down. A client (or a generator) can follow them instead of guessing, and
schemathesis walks them in the stateful test (tests/api/test_stateful.py).

The links are derived from the paths: a creating operation links to each operation whose path
is its own path plus the new id's parameter, with the parameters it already had passed on."""

import re
from typing import Any

# Operations that create an object: (operationId, status) → the path parameter its id fills.
CREATES: dict[str, tuple[str, str]] = {
    "account_new": ("201", "account_id"),
    "contact_new": ("201", "contact_id"),
    "opportunity_new": ("201", "opportunity_id"),
    "approval_new": ("201", "approval_id"),
    "team_add": ("201", "member_id"),
    "competitor_new": ("201", "row_id"),
    "objection_new": ("201", "objection_id"),
    "quote_new": ("201", "quote_id"),
    "activity_new": ("201", "activity_id"),
}
# Request bodies that name an object another operation creates: (producer, consumer, field).
BODY_LINKS = [
    ("account_new", "opportunity_new", "account_id"),
    ("account_new", "account_new", "parent_id"),  # a member of the group just created
]
# Creators whose answer carries the object's `version`: it is the `expected_version` of the
# writes on it that take one (so that a client following the link is not refused as stale).
VERSIONED = {"opportunity_new"}

PARAMETER = re.compile(r"\{(\w+)\}")


def _link_name(operation_id: str) -> str:
    return "".join(part.capitalize() for part in operation_id.split("_"))


def _body_fields(schema: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The properties of an operation's JSON request body (by its component schema)."""
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return set(component.get("properties", {}))


def add_links(schema: dict[str, Any]) -> None:
    """Add the `links` of every creating operation's success response to `schema`, in place."""
    operations = {
        op["operationId"]: (path, op)
        for path, methods in schema["paths"].items()
        for op in methods.values()
        if "operationId" in op
    }
    for producer, (status, new_param) in CREATES.items():
        if producer not in operations:
            continue
        path, operation = operations[producer]
        known = PARAMETER.findall(path)
        links: dict[str, Any] = {}
        for consumer, (consumer_path, consumer_op) in sorted(operations.items()):
            if not consumer_path.startswith(f"{path}/{{{new_param}}}"):
                continue
            if set(PARAMETER.findall(consumer_path)) != {*known, new_param}:
                continue  # deeper down: needs an id this response does not give
            parameters = {name: f"$request.path.{name}" for name in known}
            parameters[new_param] = "$response.body#/id"
            link: dict[str, Any] = {
                "operationId": consumer,
                "parameters": parameters,
                "description": f"The `id` in the response is the `{new_param}` of this operation.",
            }
            if producer in VERSIONED and "expected_version" in _body_fields(schema, consumer_op):
                link["requestBody"] = {"expected_version": "$response.body#/version"}
            links[_link_name(consumer)] = link
        for body_producer, consumer, field in BODY_LINKS:
            if body_producer == producer and consumer in operations:
                name = _link_name(consumer) + ("Member" if consumer == producer else "")
                links[name] = {
                    "operationId": consumer,
                    "requestBody": {field: "$response.body#/id"},
                    "description": f"The `id` in the response is the `{field}` of the body.",
                }
        if links:
            operation["responses"][str(status)]["links"] = links
