"""loudou's own import template: a workbook (or a directory of CSV files) with the sheets
accounts, contacts, opportunities and history, headers in English or Chinese as the template
writes them. `template_sheets()` is what `loudou import template` and the web page hand out.

Stages are a playbook stage key or its name; status is open, won or lost; owners are usernames
(or names, or e-mails); every row has an id of the user's choosing, which a later import of the
same file uses to update instead of duplicating."""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from loudou.customers.models import Industry, SelectionPart, SizeBand
from loudou.interop.formats.common import (
    Aliases,
    DealOptions,
    attach_history,
    history_events,
    match_columns,
    no_sheet,
    read_deals,
    require_columns,
    sheet_score,
)
from loudou.interop.records import AccountRow, ContactRow, Parsed, RowReader
from loudou.interop.tables import Sheet

SOURCE = "native"
# field → (English header, Chinese header, example, help); the first two are what the template
# writes, and either is read back (plus the field name itself).
ACCOUNT_COLUMNS = {
    "external_id": ("id", "编号", "A-001", gettext_noop("Your id for the account (any text).")),
    "name": ("name", "客户名称", "华能集团", gettext_noop("Required.")),
    "credit_code": ("credit_code", "统一社会信用代码", "", gettext_noop("18 characters.")),
    "industry": ("industry", "行业", "power", gettext_noop("An industry key or name.")),
    "size_band": ("size_band", "规模", "large", gettext_noop("small, medium, large or huge.")),
    "employees": ("employees", "员工数", "12000", ""),
    "organisations_count": ("organisations_count", "下属组织数", "12", ""),
    "parent": ("parent", "上级集团", "", gettext_noop("The name of its group's account.")),
    "owner": ("owner", "负责人", "seller", gettext_noop("A username.")),
    "it_need": ("it_need", "信息化需求", "集团财务管控", ""),
    "product_fit": ("product_fit", "产品匹配", "多组织财务", ""),
}
CONTACT_COLUMNS = {
    "external_id": ("id", "编号", "C-001", ""),
    "account": ("account", "客户名称", "华能集团", gettext_noop("Required: the account's name.")),
    "name": ("name", "姓名", "王总", gettext_noop("Required.")),
    "title": ("title", "职务", "CFO", ""),
    "phone": ("phone", "电话", "", ""),
    "email": ("email", "邮箱", "", ""),
    "selection_part": ("selection_part", "选型角色", "decision_maker",
                       gettext_noop("decision_maker, influencer, user, evaluator, … or empty.")),
}  # fmt: skip
DEAL_COLUMNS = {
    "external_id": ("id", "编号", "D-001", gettext_noop("Your id for the deal (any text).")),
    "name": ("name", "商机名称", "集团财务共享", gettext_noop("Required.")),
    "account": ("account", "客户名称", "华能集团", gettext_noop("Required.")),
    "owner": ("owner", "负责人", "seller", gettext_noop("A username.")),
    "stage": ("stage", "阶段", "intent", gettext_noop("A stage key or name of the playbook.")),
    "status": ("status", "状态", "open", gettext_noop("open, won or lost.")),
    "amount": ("amount", "金额", "1200000", ""),
    "currency": ("currency", "币种", "CNY", ""),
    "close_date": ("close_date", "预计成交日期", "2026-12-31", ""),
    "created_at": ("created_at", "创建时间", "2026-09-01", ""),
    "closed_at": ("closed_at", "关闭时间", "", gettext_noop("When it was won or lost.")),
    "probability": ("probability", "赢率", "", gettext_noop("Percent; empty: the stage's.")),
    "need": ("need", "需求", "", ""),
    "lost_reason": ("lost_reason", "丢单原因", "", ""),
}
HISTORY_COLUMNS = {
    "deal_id": ("deal_id", "商机编号", "D-001", gettext_noop("The deal's id.")),
    "at": ("at", "时间", "2026-09-15 10:00", ""),
    "stage": ("stage", "阶段", "discover", ""),
    "status": ("status", "状态", "open", ""),
    "amount": ("amount", "金额", "", gettext_noop("Empty: the deal's.")),
    "close_date": ("close_date", "预计成交日期", "", ""),
}
SHEETS = {
    "accounts": ("accounts", "客户", ACCOUNT_COLUMNS),
    "contacts": ("contacts", "联系人", CONTACT_COLUMNS),
    "opportunities": ("opportunities", "商机", DEAL_COLUMNS),
    "history": ("history", "历史", HISTORY_COLUMNS),
}
STATUSES = {"open": "open", "won": "won", "lost": "lost", "进行中": "open", "赢单": "won",
            "输单": "lost", "": ""}  # fmt: skip


def _aliases(columns: dict[str, tuple[str, str, str, str]]) -> Aliases:
    return {key: (en, zh, key) for key, (en, zh, _ex, _help) in columns.items()}


def template_sheets(language: str) -> list[tuple[str, list[str], list[str], list[str]]]:
    """(sheet name, headers, example row, help row) per sheet, in `language` (zh-hans or en)."""
    zh = language.startswith("zh")
    out = []
    for en_name, zh_name, columns in SHEETS.values():
        headers = [zh_h if zh else en_h for en_h, zh_h, _ex, _h in columns.values()]
        example = [ex for _en, _zh, ex, _h in columns.values()]
        helps = [_(h) if h else "" for _en, _zh, _ex, h in columns.values()]
        out.append((zh_name if zh else en_name, headers, example, helps))
    return out


def sheet_kind(sheet: Sheet) -> str:
    """Which sheet of the template this is: by its name, else by its columns."""
    name = sheet.name.strip().lower()
    for kind, (en, zh, _columns) in SHEETS.items():
        if name in (en, zh) or name.endswith((f"-{en}", f"_{en}")):
            return kind
    scores = {
        kind: sheet_score(sheet.headers, _aliases(columns), tuple(columns))
        for kind, (_en, _zh, columns) in SHEETS.items()
    }
    if sheet_score(sheet.headers, _aliases(HISTORY_COLUMNS), ("deal_id", "at")) == 2:
        return "history"
    return max(scores, key=lambda k: scores[k])


def parse(
    sheets: list[Sheet], options: DealOptions, columns: dict[str, str] | None = None
) -> Parsed:
    parsed = Parsed(source=SOURCE)
    by_kind: dict[str, list[Sheet]] = {k: [] for k in SHEETS}
    for sheet in sheets:
        if sheet.name.strip().lower() in ("readme", "说明"):
            continue
        by_kind[sheet_kind(sheet)].append(sheet)
    if not any(by_kind.values()):
        parsed.problems.append(no_sheet(sheets, "opportunities"))
        return parsed
    industries = _industries()
    for sheet in by_kind["accounts"]:
        _read_accounts(parsed, sheet, industries)
    for sheet in by_kind["contacts"]:
        _read_contacts(parsed, sheet)
    aliases = _aliases(DEAL_COLUMNS)
    for sheet in by_kind["opportunities"]:
        found = match_columns(sheet.headers, aliases, columns)
        if require_columns(parsed, sheet, found, aliases, ("name", "account", "stage")):
            read_deals(parsed, sheet, found, options, statuses=STATUSES)
    for sheet in by_kind["history"]:
        found = match_columns(sheet.headers, _aliases(HISTORY_COLUMNS))
        events = history_events(parsed, sheet, found, options)
        attach_history(parsed, events, sheet.name, found.get("deal_id", ""))
    return parsed


def _industries() -> dict[str, str]:
    out = {}
    for key, zh, en in Industry.objects.values_list("key", "name_zh", "name_en"):
        for name in (key, zh, en):
            out[name.strip().lower()] = key
    return out


def _read_accounts(parsed: Parsed, sheet: Sheet, industries: dict[str, str]) -> None:
    aliases = _aliases(ACCOUNT_COLUMNS)
    found = match_columns(sheet.headers, aliases)
    if not require_columns(parsed, sheet, found, aliases, ("name",)):
        return
    for number, cells in sheet.fields(found):
        r = RowReader(parsed, sheet.name, number, cells, found)
        name = r.text("name", required=True, limit=200)
        fields: dict[str, Any] = {}
        industry = r.text("industry")
        if industry:
            if industry.lower() not in industries:
                r.problem("industry", industry, _("no such industry"))
            fields["industry"] = industries.get(industry.lower())
        size = r.text("size_band").lower()
        if size:
            if size not in SizeBand.values:
                r.problem(
                    "size_band", size, _("must be one of %(v)s") % {"v": ", ".join(SizeBand.values)}
                )
            fields["size_band"] = size
        for key in ("employees", "organisations_count"):
            value = r.text(key).replace(",", "")
            if value:
                if not value.isdigit():
                    r.problem(key, value, _("not a whole number"))
                fields[key] = value
        for key in ("credit_code", "it_need", "product_fit"):
            if key in found:
                fields[key] = r.text(key)
        if r.ok:
            parsed.accounts.append(
                AccountRow(
                    sheet=sheet.name,
                    row=number,
                    external_id=r.text("external_id") or name,
                    name=name,
                    owner=r.text("owner"),
                    fields=fields,
                    parent=r.text("parent"),
                )
            )


def _read_contacts(parsed: Parsed, sheet: Sheet) -> None:
    aliases = _aliases(CONTACT_COLUMNS)
    found = match_columns(sheet.headers, aliases)
    if not require_columns(parsed, sheet, found, aliases, ("account", "name")):
        return
    for number, cells in sheet.fields(found):
        r = RowReader(parsed, sheet.name, number, cells, found)
        account = r.text("account", required=True)
        name = r.text("name", required=True, limit=120)
        part = r.text("selection_part")
        if part not in SelectionPart.values:
            r.problem(
                "selection_part",
                part,
                _("must be one of %(v)s") % {"v": ", ".join(v for v in SelectionPart.values if v)},
            )
        fields: dict[str, str] = {k: r.text(k) for k in ("title", "phone", "email") if k in found}
        fields["selection_part"] = part
        if r.ok:
            parsed.contacts.append(
                ContactRow(
                    sheet=sheet.name,
                    row=number,
                    external_id=r.text("external_id") or f"{account}\x1f{name}",
                    account=account,
                    fields={"name": name, **fields},
                )
            )
