"""Accepting stage probabilities into the playbook: a new version (never an edit of the one open
deals were created under), only by an administrator or the command line, within the playbook
file's rules, recorded in the audit log; a refusal changes nothing."""

from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from loudou.analytics.caches import caches_verify
from loudou.analytics.selectors import funnel_snapshot
from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.playbooks.models import Criterion, Playbook, Stage
from loudou.playbooks.selectors import playbook_as_dict, playbook_get
from loudou.playbooks.services import (
    BUILTIN_DIR,
    playbook_load_file,
    playbook_probabilities_accept,
)

FUNNEL = {
    "target": 0,
    "discover": 10,
    "intent": 25,
    "project": 40,
    "recognition": 60,
    "negotiation": 80,
    "closed": 100,
}


def _probabilities(playbook: Playbook) -> dict[str, int]:
    return {s.key: s.probability for s in playbook.stages.order_by("order")}


def _counts() -> tuple[int, int, int, int]:
    return (
        Playbook.objects.count(),
        Stage.objects.count(),
        Criterion.objects.count(),
        AuditEvent.objects.count(),
    )


def _without_version(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "version": None, "stages": [{**s, "probability": None} for s in data["stages"]]}


def test_admin_accepts_a_new_version_with_exactly_those_probabilities(org, playbook):
    before = _counts()
    new = playbook_probabilities_accept(
        playbook=playbook, actor=org["admin"], probabilities={"discover": 12, "intent": 31}
    )
    assert (new.key, new.version, new.is_current) == ("project-funnel", 2, True)
    assert _probabilities(new) == {**FUNNEL, "discover": 12, "intent": 31}
    old = Playbook.objects.get(pk=playbook.pk)
    assert (old.version, old.is_current) == (1, False)
    assert _probabilities(old) == FUNNEL  # the version deals were created under is untouched
    # Everything else is copied: stages, owners, criteria, main work, max days, categories.
    assert _without_version(playbook_as_dict(new)) == _without_version(playbook_as_dict(old))
    assert (new.is_default, new.is_builtin, new.source_digest, new.source_name) == (
        old.is_default,
        old.is_builtin,
        old.source_digest,
        old.source_name,
    )
    criteria = Criterion.objects.filter(stage__playbook=playbook).count()
    assert Criterion.objects.filter(stage__playbook=new).count() == criteria
    assert _counts() == (before[0] + 1, before[1] + 7, before[2] + criteria, before[3] + 1)
    assert playbook_get("project-funnel") == new
    assert playbook_get() == new  # still the default playbook


def test_the_audit_event_says_what_changed(org, playbook):
    new = playbook_probabilities_accept(
        playbook=playbook,
        actor=org["admin"],
        probabilities={"discover": 12, "intent": 25, "negotiation": 85},
    )
    event = AuditEvent.objects.get(action="playbook.probabilities_accept")
    assert (event.actor, event.object_id, event.object_repr) == (
        org["admin"],
        str(new.pk),
        str(new),
    )
    assert event.before == {"discover": 10, "intent": 25, "negotiation": 80}
    assert event.after == {"discover": 12, "intent": 25, "negotiation": 85, "version": 2}


def test_old_deals_keep_their_stage_and_new_deals_use_the_new_one(org, playbook, walker):
    old_deal = walker.to(walker.create(name="旧商机"), "intent")
    new = playbook_probabilities_accept(
        playbook=playbook, actor=None, probabilities={"discover": 15, "intent": 30}
    )
    old_deal.refresh_from_db()
    assert (old_deal.playbook_id, old_deal.stage.playbook_id) == (playbook.pk, playbook.pk)
    assert old_deal.probability == 25
    new_deal = walker.create(name="新商机")
    assert (new_deal.playbook_id, new_deal.stage.key, new_deal.probability) == (
        new.pk,
        "discover",
        15,
    )
    new_deal = walker.to(new_deal, "intent")
    assert (new_deal.stage.playbook_id, new_deal.probability) == (new.pk, 30)
    # The old deal moves on within its own version.
    old_deal = walker.to(old_deal, "project")
    assert (old_deal.stage.playbook_id, old_deal.probability) == (playbook.pk, 40)
    # History and its caches still agree, and the funnel counts both versions' deals by key.
    assert caches_verify() == []
    funnel = funnel_snapshot(org["admin"], new)
    counts = {row["key"]: row["count"] for row in funnel["stages"]}
    assert (counts["intent"], counts["project"]) == (1, 1)


def test_any_version_accepts_onto_the_current_one(org, playbook):
    second = playbook_probabilities_accept(
        playbook=playbook, actor=None, probabilities={"discover": 12}
    )
    third = playbook_probabilities_accept(
        playbook=playbook, actor=None, probabilities={"intent": 30}
    )
    assert (second.version, third.version) == (2, 3)
    assert _probabilities(third) == {**FUNNEL, "discover": 12, "intent": 30}
    assert list(Playbook.objects.filter(key=playbook.key, is_current=True)) == [third]


def test_loading_the_same_file_again_keeps_the_accepted_version(org, playbook):
    new = playbook_probabilities_accept(
        playbook=playbook, actor=None, probabilities={"discover": 12}
    )
    loaded, created = playbook_load_file(path=BUILTIN_DIR / "project-funnel.yaml")
    assert (loaded, created) == (new, False)
    assert _probabilities(playbook_get("project-funnel"))["discover"] == 12


def test_loading_a_changed_file_makes_a_version_from_the_file(org, playbook, tmp_path: Path):
    playbook_probabilities_accept(playbook=playbook, actor=None, probabilities={"discover": 12})
    text = (BUILTIN_DIR / "project-funnel.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "project-funnel.yaml"
    assert text.count("probability: 10\n") == 1
    changed.write_text(text.replace("probability: 10\n", "probability: 11\n"), encoding="utf-8")
    loaded, created = playbook_load_file(path=changed)
    assert (created, loaded.version, _probabilities(loaded)) == (
        True,
        3,
        {**FUNNEL, "discover": 11},
    )


@pytest.mark.parametrize("who", ["seller", "manager", "executive"])
def test_anyone_but_an_administrator_is_refused_and_nothing_changes(org, playbook, who):
    before = (_counts(), _probabilities(playbook))
    with pytest.raises(PermissionDenied) as caught:
        playbook_probabilities_accept(
            playbook=playbook, actor=org[who], probabilities={"discover": 12}
        )
    assert caught.value.message == (
        "Only an administrator may accept stage probabilities into the playbook."
    )
    assert (_counts(), _probabilities(playbook)) == before
    assert Playbook.objects.get(pk=playbook.pk).is_current


def test_the_refusal_is_in_the_users_language(org, playbook):
    with translation.override("zh-hans"), pytest.raises(PermissionDenied) as caught:
        playbook_probabilities_accept(
            playbook=playbook, actor=org["seller"], probabilities={"discover": 12}
        )
    # Until the lead translates the sentence, gettext answers it in English; never empty.
    assert caught.value.message


@pytest.mark.parametrize(
    ("probabilities", "details"),
    [
        (
            {"won": 50},
            {
                "probabilities.won": "not an open stage of this playbook (open stages: discover, "
                "intent, project, recognition, negotiation)"
            },
        ),
        (
            {"target": 5, "closed": 90},
            {
                "probabilities.target": "not an open stage of this playbook (open stages: "
                "discover, intent, project, recognition, negotiation)",
                "probabilities.closed": "not an open stage of this playbook (open stages: "
                "discover, intent, project, recognition, negotiation)",
            },
        ),
        ({"discover": 101}, {"probabilities.discover": "101: a whole percent from 0 to 100"}),
        ({"discover": -1}, {"probabilities.discover": "-1: a whole percent from 0 to 100"}),
        ({"discover": 12.5}, {"probabilities.discover": "12.5: a whole percent from 0 to 100"}),
        ({"discover": True}, {"probabilities.discover": "True: a whole percent from 0 to 100"}),
        ({"discover": "12"}, {"probabilities.discover": "'12': a whole percent from 0 to 100"}),
        ({}, {"probabilities": "required"}),
    ],
)
def test_bad_keys_and_values_are_refused_per_field(org, playbook, probabilities, details):
    before = (_counts(), _probabilities(playbook))
    with pytest.raises(ValidationFailed) as caught:
        playbook_probabilities_accept(
            playbook=playbook, actor=org["admin"], probabilities=probabilities
        )
    assert caught.value.details == details
    assert (_counts(), _probabilities(playbook)) == before


def test_probabilities_may_not_decrease_down_the_funnel(org, playbook):
    before = (_counts(), _probabilities(playbook))
    with pytest.raises(ValidationFailed) as caught:
        playbook_probabilities_accept(
            playbook=playbook, actor=org["admin"], probabilities={"intent": 45}
        )
    assert caught.value.message == (
        "Open stages' probabilities must not decrease down the funnel: project (40 %) would "
        "come after intent (45 %)."
    )
    assert caught.value.details == {"probabilities.project": "lower than the stage before it"}
    assert (_counts(), _probabilities(playbook)) == before
    # Equal neighbours are allowed, as in a playbook file.
    new = playbook_probabilities_accept(
        playbook=playbook, actor=org["admin"], probabilities={"intent": 40}
    )
    assert _probabilities(new)["intent"] == 40


def test_the_same_values_make_no_version_and_no_audit(org, playbook):
    before = _counts()
    same = playbook_probabilities_accept(
        playbook=playbook, actor=org["admin"], probabilities={"discover": 10, "project": 40}
    )
    assert same == playbook
    assert _counts() == before
