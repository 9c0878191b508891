"""Access control, proven: every web page and API operation tried as every role, for reading and
for each write, against the one table of `matrix.py`.

- A web route or API operation without an entry in the table fails (and so does an entry whose
  endpoint is gone).
- Each case runs as every role in a savepoint rolled back afterwards, so every role starts from
  the same world; a write that is not `ok` must leave the database exactly as it was (every row
  of every loudou table), an `ok` write must change it.
- No answer to a Beijing user (pages, exports, searches, analytics, error pages) names a Shanghai
  object, and no answer to a Shanghai user names a Beijing one.

The issue's rules one by one are in `test_permission_rules.py`.
"""

import dataclasses
from typing import Any

from django.test import Client

from loudou.api.services import token_create
from tests.trust import matrix as m
from tests.trust import matrix_world
from tests.trust.matrix_requests import (
    Tally,
    api_operations,
    api_url,
    try_case,
    web_clients,
    web_endpoints,
    web_url,
)

world = matrix_world.world  # the matrix's world (a fixture, reused as is)


def test_every_endpoint_has_an_entry_in_the_table() -> None:
    web, operations = web_endpoints(), api_operations()
    assert len(web) >= 60 and len(operations) >= 70
    missing = sorted(set(web) - set(m.WEB)) + sorted(set(operations) - set(m.API))
    stale = sorted(set(m.WEB) - set(web)) + sorted(set(m.API) - set(operations))
    assert not missing, (
        "Endpoints without an entry in tests/trust/matrix_web.py or matrix_api.py (say what each"
        " role may do): " + ", ".join(missing)
    )
    assert not stale, (
        "Entries in tests/trust/matrix_web.py or matrix_api.py for endpoints that are"
        " gone: " + ", ".join(stale)
    )
    for table in (m.WEB, m.API):
        for key, cases in table.items():
            assert cases, key
            for case in cases:
                assert set(case.expect) == set(m.ROLES), (key, case.label)


def test_every_web_page_as_every_role(world: dict[str, Any]) -> None:
    tally = Tally()
    clients = web_clients(world["org"])
    for key, cases in m.WEB.items():
        for case in cases:
            for role in m.ROLES:
                try_case(
                    tally,
                    key,
                    case,
                    role,
                    clients[role],
                    web_url(key, case),
                    world,
                    is_api=False,
                    headers={},
                )
                if case.fresh_clients:
                    clients = web_clients(world["org"])
    tally.check()


def test_every_api_operation_as_every_role(world: dict[str, Any]) -> None:
    tally = Tally()
    org = world["org"]
    tokens = {"anonymous": {}}
    for role, username in m.USERNAMES.items():
        _token, secret = token_create(actor=org[username], name="matrix")
        tokens[role] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for key, cases in m.API.items():
        method = key.split(" ", 1)[0].lower()
        for case in cases:
            case = dataclasses.replace(case, method=method)
            for role in m.ROLES:
                try_case(
                    tally,
                    key,
                    case,
                    role,
                    Client(HTTP_ACCEPT_LANGUAGE="en"),
                    api_url(key, case),
                    world,
                    is_api=True,
                    headers=tokens[role],
                )
    tally.check()
