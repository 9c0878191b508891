"""The company the win model page tests read (`company`): 420 closed deals with a trained model.
Training costs seconds, so it is built once per test module, inside a transaction rolled back at
the module's end; each test runs in a savepoint within it."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test.utils import override_settings

from loudou.learning.services import win_model_train
from loudou.pipeline.catalogs import lost_reasons_load_defaults
from loudou.playbooks.services import playbooks_load_builtin
from tests.conftest import make_account, make_org
from tests.learning.test_learning import START, _company, _deal
from tests.web.learning.win_model import FAST_HASHERS


@pytest.fixture(scope="module")
def company(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """420 closed deals of the project funnel (tests/learning's `_company`), a trained model,
    and one open deal of the Beijing seller."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            playbooks = {p.key: p for p in playbooks_load_builtin()}
            lost_reasons_load_defaults()
            org = make_org()
            account = make_account(org)
            playbook = playbooks["project-funnel"]
            _company(org, account, playbook)
            model = win_model_train(playbook=playbook, actor=None)
            open_deal = _deal(
                org,
                account,
                playbook,
                999,
                big=True,
                won=None,
                created=START + dt.timedelta(days=430),
                length=60,
            )
            yield {
                **org,
                "playbook": playbook,
                "simple": playbooks["simple"],
                "account": account,
                "model": model,
                "open_deal": open_deal,
            }
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
