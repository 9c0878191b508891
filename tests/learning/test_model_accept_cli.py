"""`loudou model accept`: the suggested stage probabilities (or those given with --stage) become a
new playbook version, after showing old → new and confirming; refusals say why in one sentence
and change nothing."""

import io
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.core.models import AuditEvent
from loudou.learning.management.commands.model import suggested_percent
from loudou.playbooks.models import Playbook, Stage
from tests.api.test_learning_api import stored_model

SUGGESTED = {
    "discover": {"reached": 400, "won": 50, "rate": 0.125},
    "intent": {"reached": 300, "won": 80, "rate": 0.2649},
    "closed": {"reached": 50, "won": 50, "rate": 0.9808},
}


class Terminal(io.StringIO):
    """A terminal on stdin that answers the prompt."""

    def isatty(self) -> bool:
        return True


def state() -> tuple[Any, ...]:
    return (
        list(Playbook.objects.values_list("pk", "version", "is_current")),
        list(Stage.objects.values_list("pk", "probability")),
        AuditEvent.objects.count(),
    )


def current() -> dict[str, int]:
    playbook = Playbook.objects.get(key="project-funnel", is_current=True)
    return {"version": playbook.version} | {
        s.key: s.probability for s in playbook.stages.filter(kind="open")
    }


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("model", "accept", *args, "--lang", "en", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_suggested_rates_round_to_whole_percents_halves_up():
    assert [suggested_percent(r) for r in (0.125, 0.2649, 0.005, 0.9951, 0.0, 1.0)] == [
        13,
        26,
        1,
        100,
        0,
        100,
    ]


def test_given_stages_are_accepted_as_a_new_version_with_json(org, playbook):
    out, err = run("--stage", "discover=12", "--stage", "intent=30", "--json")
    assert json.loads(out) == {
        "playbook": "project-funnel",
        "version": 2,
        "created": True,
        "probabilities": {
            "discover": {"before": 10, "after": 12},
            "intent": {"before": 25, "after": 30},
        },
    }
    assert err == ""
    assert current() == {
        "version": 2,
        "discover": 12,
        "intent": 30,
        "project": 40,
        "recognition": 60,
        "negotiation": 80,
    }
    event = AuditEvent.objects.get(action="playbook.probabilities_accept")
    assert (event.actor, event.after) == (None, {"discover": 12, "intent": 30, "version": 2})


def test_the_suggested_rates_after_a_confirmation(org, playbook, monkeypatch):
    stored_model(playbook, suggested_stage_probabilities=SUGGESTED)
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    out, err = run()
    # The table shows each open stage the model suggests (not the won stage): now → new.
    assert "project-funnel v1: stage probabilities (%)" in out
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert "discover 10 13 400 50" in lines
    assert "intent 25 26 300 80" in lines
    assert not any(line.startswith("closed") for line in lines)
    assert "Accept these probabilities as a new playbook version? [y/N]" in err
    assert "Accepted as project-funnel v2" in out
    assert current() == {
        "version": 2,
        "discover": 13,
        "intent": 26,
        "project": 40,
        "recognition": 60,
        "negotiation": 80,
    }


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_anything_but_yes_accepts_nothing(org, playbook, monkeypatch, answer):
    stored_model(playbook, suggested_stage_probabilities=SUGGESTED)
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    before = state()
    with pytest.raises(CommandError, match=r"^Not accepted: nothing changed\.$"):
        run()
    assert state() == before


def test_without_a_terminal_it_needs_yes(org, playbook, monkeypatch):
    stored_model(playbook, suggested_stage_probabilities=SUGGESTED)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped, not a terminal
    before = state()
    with pytest.raises(CommandError) as caught:
        run()
    assert str(caught.value) == (
        "Not accepted: there is no terminal to confirm on; run again with --yes to accept "
        "these probabilities."
    )
    assert state() == before
    out, err = run("--yes", "--json")
    assert json.loads(out) == {
        "playbook": "project-funnel",
        "version": 2,
        "created": True,
        "probabilities": {
            "discover": {"before": 10, "after": 13},
            "intent": {"before": 25, "after": 26},
        },
    }
    assert err == ""
    # Again: the playbook already has them.
    out, _err = run("--yes")
    assert "Nothing to change: project-funnel v2 already has these probabilities." in out
    assert current()["version"] == 2


def test_no_model_no_suggestions(org, playbook):
    before = state()
    with pytest.raises(CommandError) as caught:
        run("--yes")
    assert str(caught.value) == (
        "No win model is trained for playbook project-funnel: run `loudou model train`."
    )
    assert state() == before


def test_suggestions_that_break_the_funnel_order_are_refused(org, playbook):
    # The stored model's default suggestions: discover 40 %, intent 55 % > project's 40 %.
    stored_model(playbook)
    before = state()
    with pytest.raises(CommandError) as caught:
        run("--yes")
    assert str(caught.value) == (
        "Open stages' probabilities must not decrease down the funnel: project (40 %) would "
        "come after intent (55 %). (project: lower than the stage before it)"
    )
    assert state() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stage", "closed=90"],
            "Some stage probabilities are not valid; see errors. (closed: not an open stage of "
            "this playbook (open stages: discover, intent, project, recognition, negotiation))",
        ),
        (
            ["--stage", "discover=101"],
            "Some stage probabilities are not valid; see errors. (discover: 101: a whole "
            "percent from 0 to 100)",
        ),
        (["--stage", "discover"], "'discover': write KEY=PERCENT, e.g. discover=12"),
        (["--stage", "discover=ten"], "'discover=ten': write KEY=PERCENT, e.g. discover=12"),
        (
            ["--stage", "discover=12", "--as", "seller"],
            "Only an administrator may accept stage probabilities into the playbook.",
        ),
        (
            ["--stage", "discover=12", "--as", "manager"],
            "Only an administrator may accept stage probabilities into the playbook.",
        ),
        (["--stage", "discover=12", "--playbook", "nothing"], "No playbook nothing."),
    ],
)
def test_refusals_are_one_sentence_and_change_nothing(org, playbook, args, message):
    before = state()
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert message in str(caught.value)
    assert state() == before


def test_an_administrator_named_with_as_is_recorded(org, playbook):
    run("--stage", "negotiation=85", "--as", "admin")
    event = AuditEvent.objects.get(action="playbook.probabilities_accept")
    assert (event.actor, event.before, event.after) == (
        org["admin"],
        {"negotiation": 80},
        {"negotiation": 85, "version": 2},
    )
