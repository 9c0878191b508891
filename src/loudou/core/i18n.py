"""Bilingual data: playbook texts and catalogues carry `<field>_zh` and `<field>_en` columns."""

from typing import Any

from django.utils.translation import get_language


def is_chinese(language: str | None = None) -> bool:
    """True when the language (default: the active one) is a Chinese variant."""
    return (language or get_language() or "zh-hans").lower().startswith("zh")


def localized(obj: Any, field: str, language: str | None = None) -> str:
    """`obj.<field>_zh` or `obj.<field>_en` for the language, falling back to the other one."""
    zh, en = getattr(obj, f"{field}_zh", ""), getattr(obj, f"{field}_en", "")
    if is_chinese(language):
        return zh or en
    return en or zh


def join_list(items: list[str], language: str | None = None) -> str:
    """Join short items the way the language does: 、 in Chinese, ", " in English."""
    return ("、" if is_chinese(language) else ", ").join(items)


def join_clauses(items: list[str], language: str | None = None) -> str:
    """Join clauses: ； in Chinese, "; " in English."""
    return ("；" if is_chinese(language) else "; ").join(items)


def parenthesised(text: str, language: str | None = None) -> str:
    """A remark in parentheses: full-width in Chinese."""
    return f"（{text}）" if is_chinese(language) else f" ({text})"


def localized_dict(value: dict[str, str] | None, language: str | None = None) -> str:
    """Pick from a {"zh": ..., "en": ...} mapping with the same fallback."""
    value = value or {}
    first, second = ("zh", "en") if is_chinese(language) else ("en", "zh")
    return value.get(first) or value.get(second) or ""
