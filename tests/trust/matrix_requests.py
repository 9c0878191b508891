"""Trying the permission matrix's cases: the endpoints the URL conf and the OpenAPI document
have, the snapshot of every loudou table a write is judged by, one request sent as one role in a
savepoint rolled back afterwards, and the verdict on its answer: the outcome the table expects,
a refused write that changed nothing, an `ok` write that changed something, and no Beijing
secret shown to Shanghai (nor the other way round).
"""

import functools
import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from loudou.api.api import api as ninja_api
from tests.trust import matrix as m

# --- the endpoints ------------------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    return ninja_api.get_openapi_schema(path_prefix="/api/v1/")


def api_operations() -> list[str]:
    """Every operation of the OpenAPI document, as "METHOD /api/v1/path"."""
    return sorted(
        f"{method.upper()} {path}" for path, ops in _openapi()["paths"].items() for method in ops
    )


def web_endpoints() -> dict[str, str]:
    """Every route of the URL conf outside the API operations: url name (or, unnamed, the
    route) → route. The Django admin is one entry, `admin/`."""
    operation_paths = {path.removeprefix("/") for path in _openapi()["paths"]}
    found: dict[str, str] = {}

    def walk(resolver: URLResolver, prefix: str, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route.startswith("admin/"):
                    found["admin/"] = "admin/"
                    continue
                inner = ":".join(n for n in (namespace, pattern.namespace) if n)
                walk(pattern, route, inner)
                continue
            assert isinstance(pattern, URLPattern)
            if re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) in operation_paths:
                continue  # an API operation: the OpenAPI part covers it
            key = f"{namespace}:{pattern.name}" if namespace and pattern.name else route
            found.setdefault(key, route)

    walk(get_resolver(), "", "")
    return found


# --- trying a case ------------------------------------------------------------------------------

# Written by reading, not a change of the world: when the API was last used with a token.
NOT_STATE = {("api.ApiToken", "last_used_at"), ("org.User", "last_login")}


@functools.cache
def _snapshot_queries() -> list[tuple[str, str]]:
    """(model label, SQL reading every row of its table) for every loudou model."""
    queries = []
    quote = connection.ops.quote_name
    for model in apps.get_models():
        meta = model._meta
        if not model.__module__.startswith("loudou.") or meta.proxy or not meta.managed:
            continue
        columns = ", ".join(
            quote(f.column)
            for f in meta.concrete_fields
            if (meta.label, f.attname) not in NOT_STATE
        )
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        queries.append((meta.label, f"SELECT {columns} FROM {table} ORDER BY {pk}"))
    return queries


def fingerprint() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every loudou table (less the fields in NOT_STATE), read with plain SQL."""
    rows = {}
    with connection.cursor() as cursor:
        for label, sql in _snapshot_queries():
            cursor.execute(sql)
            rows[label] = cursor.fetchall()
    return rows


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


def text_of(response: Any) -> str:
    """The answer as text; an XLSX workbook (a zip) as the text of its XML parts."""
    if getattr(response, "streaming", False):
        data = b"".join(response.streaming_content)
    else:
        data = response.content
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as workbook:
            data = b"\n".join(workbook.read(name) for name in workbook.namelist())
    return data.decode("utf-8", "replace")


LOGIN_PATHS = (resolve_url(settings.LOGIN_URL), "/admin/login/")


def outcome_of(response: Any, *, is_api: bool) -> str:
    status = response.status_code
    if is_api and status == 401:
        return m.LOGIN
    if 300 <= status < 400:
        location = response.get("Location", "")
        return m.LOGIN if location.startswith(LOGIN_PATHS) else m.OK
    if 200 <= status < 300:
        return m.OK
    return {404: m.HIDDEN, 403: m.FORBIDDEN, 400: m.REFUSED, 409: m.REFUSED, 422: m.REFUSED}.get(
        status, f"status {status}"
    )


class Tally:
    """Cases tried and failures, reported together at the end."""

    def __init__(self) -> None:
        self.tried = 0
        self.failures: list[str] = []
        self.endpoints: set[str] = set()

    def check(self) -> None:
        print(f"\n{len(self.endpoints)} endpoints, {self.tried} cases, {len(self.failures)} failed")
        assert not self.failures, (
            f"{len(self.failures)} of {self.tried} cases failed:\n" + "\n".join(self.failures)
        )


def _value(spec: Any, w: dict[str, Any]) -> Any:
    return spec(w) if callable(spec) else spec


def try_case(
    tally: Tally,
    endpoint: str,
    case: m.Case,
    role: str,
    client: Client,
    url_for: Callable[[dict[str, Any]], str],
    w: dict[str, Any],
    *,
    is_api: bool,
    headers: dict[str, str],
) -> None:
    """Send the case as `role` in a savepoint rolled back afterwards; judge the answer."""
    tally.tried += 1
    tally.endpoints.add(endpoint)
    title = f"{case.title(endpoint)} as {role}"
    method = case.method
    writes = method != "get"
    with transaction.atomic():
        ids = {**w, **(case.prepare(w) if case.prepare else {})}
        url = url_for(ids)
        query = _value(case.query, ids)
        if query:
            url += "?" + urlencode(query)
        body = _value(case.body, ids)
        before = fingerprint() if writes else None
        if method == "get":
            response = client.get(url, **headers)
        elif method == "delete":
            response = client.delete(url, **headers)
        elif is_api and not case.multipart:
            response = getattr(client, method)(
                url, data=json.dumps(body or {}), content_type="application/json", **headers
            )
        else:
            response = client.post(url, body or {}, **headers)
        after = fingerprint() if writes else None
        transaction.set_rollback(True)
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME, None)
    text = text_of(response)
    wanted, got = case.expect[role], outcome_of(response, is_api=is_api)
    if got != wanted:
        snippet = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[:300]
        tally.failures.append(
            f"{title}: expected {wanted}, got {got} ({response.status_code}): {snippet}"
        )
    if writes and before is not None and after is not None:
        changed = changed_tables(before, after)
        if got != m.OK and changed:
            tally.failures.append(f"{title}: refused ({got}) but changed {', '.join(changed)}")
        if got == m.OK and case.writes and role != "anonymous" and not changed:
            tally.failures.append(f"{title}: answered ok but changed nothing")
    secrets = (
        m.SH_SECRETS
        if role in m.BEIJING_ROLES
        else m.BJ_SECRETS
        if role in m.SHANGHAI_ROLES
        else ()
    )
    leaked = [s for s in secrets if s in text]
    if leaked:
        at = text.find(leaked[0])
        tally.failures.append(f"{title}: LEAK of {leaked}: …{text[max(at - 80, 0) : at + 80]}…")


def web_clients(org: dict[str, Any]) -> dict[str, Client]:
    clients = {"anonymous": Client(HTTP_ACCEPT_LANGUAGE="en")}
    for role, username in m.USERNAMES.items():
        clients[role] = Client(HTTP_ACCEPT_LANGUAGE="en")
        clients[role].force_login(org[username])
    return clients


def web_url(key: str, case: m.Case) -> Callable[[dict[str, Any]], str]:
    def build(ids: dict[str, Any]) -> str:
        kwargs = {
            name: key[1:] if key.startswith("=") else ids[key] for name, key in case.args.items()
        }
        if ":" in key:
            return reverse(key, kwargs=kwargs)
        if key == "api/^(?P<rest>.*)$":
            return "/api/" + kwargs["rest"]
        return "/" + key

    return build


def api_url(key: str, case: m.Case) -> Callable[[dict[str, Any]], str]:
    template = key.split(" ", 1)[1]

    def build(ids: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(ids[case.args.get(name, m.API_PATH_ARGS[name])])

        return re.sub(r"\{(\w+)\}", fill, template)

    return build
