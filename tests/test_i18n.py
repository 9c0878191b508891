"""The Simplified Chinese catalogue: messages come out in Chinese, and the committed .po and .mo
are complete and in step (a new untranslated or fuzzy string fails the suite)."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from loudou.core.errors import GateRefused, ValidationFailed
from loudou.core.money import parse_amount
from loudou.pipeline import services as ps

LC_MESSAGES = Path(settings.LOCALE_PATHS[0]) / "zh_Hans" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"


def _unquote(line: str) -> str:
    """The text of one quoted .po string ("..." with C escapes)."""
    return ast.literal_eval(line)


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file (header included, obsolete ones left out): msgctxt, msgid,
    msgid_plural, msgstr (a dict index → text) and flags."""
    entries: list[dict] = []
    entry: dict = {}
    field: tuple[str, int] | None = None

    def flush() -> None:
        nonlocal entry, field
        if "msgid" in entry:
            entries.append(entry)
        entry, field = {}, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#~"):
            continue
        elif line.startswith("#,"):
            if "msgid" in entry:
                flush()
            entry.setdefault("flags", set()).update(
                f.strip() for f in line[2:].split(",") if f.strip()
            )
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert field is not None, f"continuation line without a field: {raw!r}"
            name, index = field
            if name == "msgstr":
                entry["msgstr"][index] += _unquote(line)
            else:
                entry[name] += _unquote(line)
        else:
            match = re.fullmatch(
                r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(\".*\")", line
            )
            assert match, f"unexpected .po line: {raw!r}"
            name, index, text = match.group(1), int(match.group(2) or 0), _unquote(match.group(3))
            if name in ("msgctxt", "msgid") and "msgstr" in entry:
                flush()
            if name == "msgstr":
                entry.setdefault("msgstr", {})[index] = text
            else:
                entry[name] = text
            field = (name, index)
    flush()
    for e in entries:
        e.setdefault("flags", set())
        e.setdefault("msgstr", {})
    return entries


def _messages(path: Path) -> list[dict]:
    return [e for e in parse_po(path) if e["msgid"] != ""]


def test_a_refused_gate_speaks_chinese(walker, org):
    opp = walker.create(name="财务共享平台")
    with translation.override("zh-hans"), pytest.raises(GateRefused) as refused:
        ps.opportunity_advance(opportunity=opp, to_stage="intent", actor=org["seller"])
    message = refused.value.message
    assert message.startswith("“财务共享平台”无法进入“")
    assert "阶段：有 " in message
    assert " 项标准未满足：" in message
    assert "cannot enter" not in message


def test_a_negative_amount_is_refused_in_chinese():
    with translation.override("zh-hans"), pytest.raises(ValidationFailed) as refused:
        parse_amount("-5")
    assert refused.value.message == "金额不能为负数（-5）。"
    assert refused.value.details == {"amount": "负数"}


def test_english_is_still_english():
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        parse_amount("-5")
    assert refused.value.message == "An amount cannot be negative (-5)."


def test_the_catalogue_is_complete():
    entries = _messages(PO)
    assert len(entries) > 300, "the catalogue lost its messages"
    header = next(e for e in parse_po(PO) if e["msgid"] == "")
    assert "fuzzy" not in header["flags"], "the .po header is still marked fuzzy"
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert not fuzzy, f"fuzzy translations: {fuzzy}"
    empty = [e["msgid"] for e in entries if not e["msgstr"] or not all(e["msgstr"].values())]
    assert not empty, f"untranslated: {empty}"


def test_translations_keep_their_placeholders():
    placeholder = re.compile(r"%(?:\([a-z_]+\))?[sd%]")
    for e in _messages(PO):
        expected = sorted(placeholder.findall(e["msgid"]))
        for text in e["msgstr"].values():
            found = sorted(placeholder.findall(text))
            assert found == expected, f"placeholders differ: {e['msgid']!r} → {text!r}"


def test_the_compiled_catalogue_matches_the_po():
    """The committed .mo holds exactly the .po's translations: run `make messages` after editing."""
    with MO.open("rb") as fh:
        mo = gettext.GNUTranslations(fh)
    stale = []
    for e in _messages(PO):
        key = e["msgid"] if "msgctxt" not in e else f"{e['msgctxt']}\x04{e['msgid']}"
        if "msgid_plural" in e:
            for index, text in e["msgstr"].items():
                if mo._catalog.get((key, index)) != text:  # type: ignore[attr-defined]
                    stale.append(e["msgid"])
        elif mo._catalog.get(key) != e["msgstr"][0]:  # type: ignore[attr-defined]
            stale.append(e["msgid"])
    assert not stale, f"django.mo is out of date; run `make messages`. Differs: {stale}"
