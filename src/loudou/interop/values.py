"""Reading the values of an imported cell: dates in the forms people and CRMs write them, amounts
with thousands separators and currency signs, probabilities as 60, 60 % or 0.6, yes/no.

Each parser returns the value or raises `BadValue` with the reason in the user's language; the
importer adds the row, the column and the value to make the error a user can act on."""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

# Excel counts days from 1899-12-30 (it believes 1900 was a leap year).
EXCEL_EPOCH = dt.date(1899, 12, 30)
CURRENCY_SIGNS = {"¥": "CNY", "￥": "CNY", "$": "USD", "€": "EUR", "£": "GBP", "HK$": "HKD"}
CURRENCY_WORDS = {"元": "CNY", "人民币": "CNY", "RMB": "CNY", "万元": "CNY"}
TRUE_WORDS = {"1", "true", "yes", "y", "是", "x", "✓", "won", "closed won"}
FALSE_WORDS = {"0", "false", "no", "n", "否", ""}
LIMIT = Decimal("1e16")
CENT = Decimal("0.01")
# HK$ before $: the longer sign first.
SIGNS_LONGEST_FIRST = sorted(CURRENCY_SIGNS.items(), key=lambda kv: -len(kv[0]))
# 2026-03-01 10:00[:00[.ffffff]]: the common case, read without the general machinery.
FAST_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?\Z")


class BadValue(ValueError):
    """A cell that cannot be read; str() is the reason, in the user's language."""


def _date_parts(text: str, dayfirst: bool) -> dt.date:
    text = text.strip()
    # 2026-03-01, 2026/3/1, 2026.3.1, 2026年3月1日
    match = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if match:
        y, m, d = (int(g) for g in match.groups())
        return dt.date(y, m, d)
    # 01/03/2026 or 1-3-2026: month first unless --dayfirst (as Excel and Salesforce en_US write)
    match = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", text)
    if match:
        a, b, y = (int(g) for g in match.groups())
        d, m = (a, b) if dayfirst else (b, a)
        return dt.date(y, m, d)
    match = re.fullmatch(r"(\d{8})", text)
    if match:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    raise ValueError(text)


def parse_date(value: Any, *, dayfirst: bool = False) -> dt.date | None:
    """A date cell: an Excel date or serial number, 2026-03-01, 2026/3/1, 2026年3月1日, 20260301,
    03/01/2026 (month first) or 01/03/2026 with `dayfirst`; a time part is ignored. Empty: None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # Excel's range, to 9999-12-31
            return EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise BadValue(_("not a date"))
    if value.__class__ is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:  # 2026-03-01, nearly every date a CRM exports: read without the general machinery
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass  # 2026-02-30: the general path says what is wrong
        else:
            if 1900 <= day.year <= 2200:
                return day
    text = str(value).strip()
    if not text:
        return None
    date_part = re.split(r"[ T]\d{1,2}:\d{2}", text, maxsplit=1)[0]
    try:
        day = _date_parts(date_part, dayfirst)
    except ValueError:
        raise BadValue(_("not a date (write it as 2026-03-01)")) from None
    if not 1900 <= day.year <= 2200:
        raise BadValue(_("a date out of range"))
    return day


def parse_datetime(value: Any, *, dayfirst: bool = False, tz: Any = None) -> dt.datetime | None:
    """A date-and-time cell as an aware datetime: with its time when it has one (read in `tz`,
    default the current time zone; a trailing Z or offset is honoured), else noon of that day;
    epoch milliseconds (HubSpot) as well. Empty: None."""
    if value is None:
        return None
    # Readers pass tz: looking up the current time zone costs more than parsing the cell.
    tz = tz or timezone.get_current_timezone()
    if isinstance(value, str) and FAST_ISO.match(value):
        try:
            return dt.datetime.fromisoformat(value).replace(tzinfo=tz)
        except ValueError:
            pass  # 2026-13-20 10:00: the general path says what is wrong, instead of a crash
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            return value
        if value.time() == dt.time(0):
            # An XLSX date cell reads as midnight: it is a day, taken as noon like "2026-03-01"
            # in a CSV (as_text shows it as a date too); midnight put it on the previous day in
            # UTC and a day-only creation before the deal's first history entry.
            value = value.replace(hour=12)
        return timezone.make_aware(value, tz)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{12,13}\s*", value):
        value = int(value)  # epoch milliseconds as a CSV writes them: text (HubSpot's API export)
    if isinstance(value, int) and value > 10**11:  # epoch milliseconds
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    if isinstance(value, float) and not value.is_integer() and 1 <= value < 2958466:
        # An Excel date-and-time serial (a cell not formatted as a date): the fraction is the
        # time of day, which parse_date below would drop for noon.
        seconds = round(value * 86400)  # to the second: float days carry rounding noise
        moment = dt.datetime.combine(EXCEL_EPOCH, dt.time(0)) + dt.timedelta(seconds=seconds)
        return timezone.make_aware(moment, tz)
    text = str(value).strip() if not isinstance(value, int | float | dt.date) else ""
    if text and re.search(r"\d[ T]\d{1,2}:\d{2}", text):  # a time part; else the date's noon
        iso = text.replace("Z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(iso)
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, tz)
        except ValueError:
            pass
        match = re.fullmatch(r"(.+?)[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*(AM|PM|am|pm)?", text)
        if match:
            day = parse_date(match.group(1), dayfirst=dayfirst)
            hour, minute = int(match.group(2)), int(match.group(3))
            second = int(match.group(4) or 0)
            if match.group(5) and match.group(5).lower() == "pm" and hour < 12:
                hour += 12
            if match.group(5) and match.group(5).lower() == "am" and hour == 12:
                hour = 0
            if day is None or hour > 23 or minute > 59 or second > 59:
                raise BadValue(_("not a date and time"))
            return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute, second)), tz)
    day = parse_date(value, dayfirst=dayfirst)
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)), tz)


def parse_money(value: Any) -> tuple[Decimal | None, str]:
    """An amount cell: (amount, currency read from a sign or word, or ""). Accepts 1,234,567.89,
    ¥1,234,567, $ 32,000.00, 32.000,00 (decimal comma), (32000.00) as negative — refused, amounts
    are never negative —, 120万 (×10,000) and 1.2亿 (×100,000,000). Empty: (None, "")."""
    if value is None:
        return None, ""
    if isinstance(value, bool):
        raise BadValue(_("not an amount"))
    if value.__class__ is str and value.isascii() and value.isdigit():
        # 1234567, as most exports write amounts: read without the general machinery
        amount, currency = Decimal(value), ""
    elif isinstance(value, int | float | Decimal):
        amount = Decimal(str(value))
        currency = ""
    else:
        text = str(value).strip().replace("\u00a0", "").replace(" ", "")
        if not text:
            return None, ""
        currency = ""
        for sign, code in SIGNS_LONGEST_FIRST:
            if sign in text:
                currency, text = code, text.replace(sign, "")
                break
        match = re.fullmatch(r"([A-Z]{3})?(.*?)([A-Z]{3})?", text)
        if match and (match.group(1) or match.group(3)):
            code = match.group(1) or match.group(3)
            currency = CURRENCY_WORDS.get(code, code)
            text = match.group(2)
        scale = Decimal(1)
        for word, factor in (("亿元", 10**8), ("亿", 10**8), ("万元", 10**4), ("万", 10**4)):
            if text.endswith(word):
                scale, text, currency = Decimal(factor), text[: -len(word)], currency or "CNY"
                break
        if text.endswith("元"):
            text, currency = text[:-1], currency or "CNY"
        if text.startswith("(") and text.endswith(")"):
            raise BadValue(_("a negative amount"))
        text = _normalise_separators(text)
        try:
            amount = Decimal(text) * scale
        except InvalidOperation:
            raise BadValue(_("not an amount")) from None
    if not amount.is_finite():
        raise BadValue(_("not an amount"))
    if amount < 0:
        raise BadValue(_("a negative amount"))
    if amount >= LIMIT:
        raise BadValue(_("too large an amount"))
    return amount.quantize(CENT), currency


def _normalise_separators(text: str) -> str:
    """1,234,567.89 → 1234567.89; 32.000,00 → 32000.00; 1.234.567 → 1234567; 12,5 → 12.5."""
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):  # 32.000,00
            return text.replace(".", "").replace(",", ".")
        return text.replace(",", "")
    if "," in text:
        if re.fullmatch(r"\d{1,3}(,\d{3})+", text):
            return text.replace(",", "")
        if re.fullmatch(r"\d+,\d{1,2}", text):
            return text.replace(",", ".")
        return text.replace(",", "")
    if re.fullmatch(r"\d{1,3}(\.\d{3}){2,}", text):
        return text.replace(".", "")
    return text


def parse_probability(value: Any) -> int | None:
    """A probability cell as a whole percent: 60, "60%", 0.6 (a fraction when at most 1). Empty:
    None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().rstrip("%").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BadValue(_("not a probability")) from None
    if not number.is_finite() or number < 0:
        raise BadValue(_("not a probability"))
    if number <= 1 and "." in text and not str(value).strip().endswith("%"):
        number *= 100  # 0.6 is a fraction; a bare 1 is 1 %
    if number > 100:
        raise BadValue(_("a probability above 100 %"))
    return int(number.quantize(Decimal(1)))


def parse_bool(value: Any) -> bool | None:
    """A yes/no cell: 1/0, true/false, yes/no, 是/否. Empty: None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    answer = truth(text)
    if answer is None:
        raise BadValue(_("not yes or no"))
    return answer


def truth(word: str) -> bool | None:
    """True or False for a yes/no word in lower case (`TRUE_WORDS`, `FALSE_WORDS`); None for
    any other."""
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
