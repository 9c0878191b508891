"""Loading playbooks: the same file changes nothing, a changed file is a new version."""

from pathlib import Path

import pytest

from loudou.core.errors import NotFound
from loudou.core.models import AuditEvent
from loudou.pipeline.models import Opportunity, OpportunityHistory
from loudou.playbooks.models import Criterion, Playbook, Role, Stage
from loudou.playbooks.selectors import playbook_get
from loudou.playbooks.services import BUILTIN_DIR, playbook_load_file, playbooks_load_builtin


def counts() -> dict[str, int]:
    return {
        "playbooks": Playbook.objects.count(),
        "stages": Stage.objects.count(),
        "criteria": Criterion.objects.count(),
        "roles": Role.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def changed_copy(tmp_path: Path, old: str, new: str, name: str = "project-funnel.yaml") -> Path:
    text = (BUILTIN_DIR / name).read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_loading_the_builtin_playbooks_writes_two_versions_and_audits_them(db):
    loaded = playbooks_load_builtin()

    assert [(p.key, p.version, p.is_current, p.is_builtin) for p in loaded] == [
        ("project-funnel", 1, True, True),
        ("simple", 1, True, True),
    ]
    assert counts() == {"playbooks": 2, "stages": 10, "criteria": 33, "roles": 9, "audit": 2}
    events = AuditEvent.objects.filter(action="playbook.load").order_by("id")
    assert [(e.actor_id, e.object_id, e.after["key"], e.after["version"]) for e in events] == [
        (None, str(loaded[0].pk), "project-funnel", 1),
        (None, str(loaded[1].pk), "simple", 1),
    ]
    assert events[0].after["digest"] == loaded[0].source_digest


def test_loading_the_same_file_again_changes_nothing(playbooks):
    before = counts()

    again = playbooks_load_builtin()
    playbook, created = playbook_load_file(path=BUILTIN_DIR / "project-funnel.yaml")

    assert [p.pk for p in again] == [playbooks["project-funnel"].pk, playbooks["simple"].pk]
    assert (playbook.pk, playbook.version, created) == (playbooks["project-funnel"].pk, 1, False)
    assert counts() == before


def test_a_change_in_comments_only_is_not_a_new_version(playbooks, tmp_path):
    path = changed_copy(
        tmp_path,
        "# The project sales funnel",
        "# A comment that changed.\n# The project sales funnel",
    )
    before = counts()

    playbook, created = playbook_load_file(path=path)

    assert (playbook.pk, playbook.version, created) == (playbooks["project-funnel"].pk, 1, False)
    assert counts() == before


def test_a_changed_file_is_version_2_and_version_1_is_kept(playbooks, tmp_path):
    v1 = playbooks["project-funnel"]
    path = changed_copy(tmp_path, "    probability: 10\n", "    probability: 15\n")
    before = counts()

    v2, created = playbook_load_file(path=path)

    v1.refresh_from_db()
    assert created is True
    assert (v2.key, v2.version, v2.is_current, v2.is_default) == ("project-funnel", 2, True, True)
    assert (v1.version, v1.is_current, v1.is_default) == (1, False, False)
    assert v2.is_builtin is False  # loaded from the user's file, not the shipped one
    assert v2.source_digest != v1.source_digest
    assert [s.probability for s in v1.stages.order_by("order")] == [0, 10, 25, 40, 60, 80, 100]
    assert [s.probability for s in v2.stages.order_by("order")] == [0, 15, 25, 40, 60, 80, 100]
    assert counts() == {
        **before,
        "playbooks": before["playbooks"] + 1,
        "stages": before["stages"] + 7,
        "criteria": before["criteria"] + 29,
        "audit": before["audit"] + 1,
    }
    assert AuditEvent.objects.latest("id").after == {
        "key": "project-funnel",
        "version": 2,
        "digest": v2.source_digest,
    }
    assert playbook_get().pk == v2.pk
    assert playbook_get("project-funnel").pk == v2.pk
    assert playbook_get("project-funnel", version=1).pk == v1.pk
    with pytest.raises(NotFound):
        playbook_get("project-funnel", version=3)

    # loading the changed file again is still version 2
    again, created_again = playbook_load_file(path=path)
    assert (again.pk, created_again) == (v2.pk, False)


def test_a_changed_non_default_playbook_stays_non_default(playbooks, tmp_path):
    path = changed_copy(tmp_path, "max_days: 45", "max_days: 30", name="simple.yaml")

    v2, created = playbook_load_file(path=path)

    assert (v2.key, v2.version, created, v2.is_default) == ("simple", 2, True, False)
    assert playbook_get().key == "project-funnel"
    assert list(
        Playbook.objects.filter(is_current=True).order_by("key").values_list("key", "version")
    ) == [("project-funnel", 1), ("simple", 2)]


def test_opportunities_keep_the_playbook_version_they_were_created_under(
    walker, playbooks, tmp_path
):
    v1 = playbooks["project-funnel"]
    old = walker.create(name="Old deal")
    v2, _created = playbook_load_file(
        path=changed_copy(tmp_path, "    probability: 25\n", "    probability: 30\n")
    )

    new = walker.create(name="New deal")
    old = walker.to(Opportunity.objects.get(pk=old.pk), "intent")

    assert (old.playbook_id, old.stage.playbook_id, old.stage.key) == (v1.pk, v1.pk, "intent")
    assert old.stage.probability == 25
    assert (new.playbook_id, new.stage.playbook_id, new.stage.key) == (v2.pk, v2.pk, "discover")
    assert set(
        OpportunityHistory.objects.filter(opportunity=old).values_list("stage__playbook", flat=True)
    ) == {v1.pk}
    # the version in use is kept, with its stages
    assert v1.stages.count() == 7
