"""The vocabulary of the permission matrix (`matrix.py`): the roles a case is tried as, the
outcomes a role may get, the usual outcome per kind of endpoint (a Beijing deal, work on it, a
manager's act, an import, the audit log), and a case with the constructors the tables are
written with. The tables themselves are `matrix_web.py` and `matrix_api.py`.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROLES = (
    "anonymous",
    "owner",
    "teammate",
    "other_seller",
    "manager",
    "other_manager",
    "executive",
    "admin",
)
USERNAMES = {
    "owner": "seller",
    "teammate": "teammate",
    "other_seller": "sh_seller",
    "manager": "manager",
    "other_manager": "sh_manager",
    "executive": "executive",
    "admin": "admin",
}
# Who must never read a Shanghai secret (and who must never read a Beijing one).
BEIJING_ROLES = ("owner", "teammate", "manager")
SHANGHAI_ROLES = ("other_seller", "other_manager")
SH_SECRETS = ("绝密", "7654321", "7,654,321")
BJ_SECRETS = ("京密",)

OK, LOGIN, HIDDEN, FORBIDDEN, REFUSED = "ok", "login", "hidden", "forbidden", "refused"

FUTURE = (dt.date.today() + dt.timedelta(days=90)).isoformat()
INTENT_EVIDENCE = {
    "interested": "CIO asked for a second meeting",
    "accepts_packaged": "They will not build in-house",
    "preliminary_requirements": "Requirement list received",
    "contacting_vendors": "They also met two vendors",
}


def expect(default: str, **overrides: str) -> dict[str, str]:
    """Every role gets `default` except anonymous (sent to sign in) and the overrides."""
    row = dict.fromkeys(ROLES, default)
    row["anonymous"] = LOGIN
    row.update(overrides)
    return row


# --- the defaults per kind of endpoint ------------------------------------------------------

PUBLIC = expect(OK, anonymous=OK)
SIGNED_IN = expect(OK)
# A Beijing object: its owner, its project team, its branch's manager, executives and admins
# see it; Shanghai people do not (404, rule 4).
BEIJING = expect(OK, other_seller=HIDDEN, other_manager=HIDDEN)
# Work on a Beijing deal: as reading it, but executives only read (the service refuses them).
# Web forms show that refusal in the form (400), the API answers 403.
DEAL_WORK_WEB = {**BEIJING, "executive": REFUSED}
DEAL_WORK_API = {**BEIJING, "executive": FORBIDDEN}
# A manager's act on a Beijing deal (override a gate, approve 立项, reassign): the Beijing
# manager, executives (managers of every branch) and admins; the seller and the team may not.
MANAGER_API = {**BEIJING, "owner": FORBIDDEN, "teammate": FORBIDDEN}
# Changing the Beijing account: its owner and who manages its branch; not the team.
ACCOUNT_EDIT = {**BEIJING, "teammate": FORBIDDEN}
# Imports: administrators and managers (sellers and executives get 403).
IMPORTER = expect(
    OK, owner=FORBIDDEN, teammate=FORBIDDEN, other_seller=FORBIDDEN, executive=FORBIDDEN
)
# One upload (or run) of the Beijing manager: his alone (even an admin gets 404 for an upload).
MANAGERS_UPLOAD_WEB = {**IMPORTER, "other_manager": HIDDEN, "admin": HIDDEN}
MANAGERS_RUN_WEB = {**IMPORTER, "other_manager": HIDDEN}
# The API hides uploads and runs from those who may not import at all (404, not 403).
MANAGERS_UPLOAD_API = expect(HIDDEN, manager=OK)
MANAGERS_RUN_API = expect(HIDDEN, manager=OK, admin=OK)
IMPORTER_API = expect(FORBIDDEN, manager=OK, other_manager=OK, admin=OK)
# The audit log: managers, executives and administrators (sellers 403); a Beijing object's log
# is hidden from the Shanghai manager.
AUDIT_READERS = expect(FORBIDDEN, manager=OK, other_manager=OK, executive=OK, admin=OK)
AUDIT_OF_BEIJING = {**AUDIT_READERS, "other_manager": HIDDEN}


@dataclass(frozen=True)
class Case:
    """One request to try as every role: method, URL arguments (world keys), query, body."""

    method: str
    expect: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None
    body: dict[str, Any] | Callable[[dict[str, Any]], Any] | None = None
    label: str = ""
    writes: bool = True  # an ok write must change the database
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # fresh ids, in the savepoint
    fresh_clients: bool = False  # the request changes who the client is (login, logout)
    multipart: bool = False  # API: a form with files rather than JSON

    def title(self, endpoint: str) -> str:
        start = endpoint if endpoint[:1].isupper() else f"{self.method.upper()} {endpoint}"
        return start + (f" [{self.label}]" if self.label else "")


def get(expect: dict[str, str], label: str = "", **kw: Any) -> Case:
    return Case("get", expect, label=label, **kw)


def post(expect: dict[str, str], body: Any = None, label: str = "", **kw: Any) -> Case:
    return Case("post", expect, body=body, label=label, **kw)


def exports(expect: dict[str, str], **query: Any) -> list[Case]:
    """The page's CSV and XLSX downloads (with `query`)."""
    return [get(expect, f"export {fmt}", query={**query, "export": fmt}) for fmt in ("csv", "xlsx")]


def probes(expect: dict[str, str], search: str = "q") -> list[Case]:
    """A search for the Shanghai secret and filters naming the Shanghai branch and seller: the
    answer may be empty or ignore the filter, but must not name a Shanghai object."""
    return [
        get(expect, "search", query={search: "XYZ"}),
        get(
            expect,
            "filter on Shanghai",
            query=lambda w: {"branch": w["shanghai"], "owner": w["sh_seller"]},
        ),
    ]


def with_win_model(w: dict[str, Any]) -> dict[str, Any]:
    """A stored win model of the world's playbook (one that fell back to the stage defaults):
    training a real one needs hundreds of closed deals."""
    from loudou.playbooks.models import Playbook
    from tests.api.test_learning_api import stored_model

    stored_model(Playbook.objects.get(key=w["playbook_key"], is_current=True))
    return {}
