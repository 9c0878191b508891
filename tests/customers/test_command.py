"""`loudou account` shows the ICP fit with reasons and lets managers override it."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.customers.models import Account


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_show_lists_each_icp_criterion_with_its_reason(account):
    data = json.loads(run("account", "--json", "show", str(account.pk)))
    assert data["target"] is True
    assert [(c["key"], c["holds"]) for c in data["icp_fit"]] == [
        ("icp_industry", True),
        ("icp_size", True),
        ("icp_group", True),
        ("icp_it_need", True),
        ("icp_product_fit", True),
    ]
    assert data["icp_fit"][0]["reason"] == "Industry Electric power is a target industry."


def test_override_needs_a_manager_and_a_reason(account):
    with pytest.raises(CommandError):
        run(
            "account",
            "--as",
            "seller",
            "qualify",
            str(account.pk),
            "--override",
            "not-target",
            "--reason",
            "x",
        )
    with pytest.raises(CommandError, match="reason"):
        run("account", "--as", "manager", "qualify", str(account.pk), "--override", "not-target")
    assert Account.objects.get(pk=account.pk).is_target is True
    run(
        "account",
        "--as",
        "manager",
        "qualify",
        str(account.pk),
        "--override",
        "not-target",
        "--reason",
        "Bankrupt",
    )
    assert Account.objects.get(pk=account.pk).is_target is False


def test_other_branches_cannot_see_the_account(account):
    with pytest.raises(CommandError, match="No such account"):
        run("account", "--as", "sh_seller", "show", str(account.pk))
    assert json.loads(run("account", "--as", "sh_seller", "--json", "list")) == []
