"""统一社会信用代码: the check character of GB 32100-2015, and accounts that carry a code."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.core.errors import ValidationFailed
from loudou.core.models import AuditEvent
from loudou.customers.credit_code import check_character, credit_code_problem
from loudou.customers.models import Account, AccountQualification
from loudou.customers.services import account_create, account_update, normalise_credit_code

# GB 32100-2015, written out again here so that the test does not trust the code under test.
GB_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The org fixture creates nine users; hashing their passwords slowly is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def gb_check(first17: str) -> str:
    total = 0
    for position, char in enumerate(first17):
        total += GB_ALPHABET.index(char) * GB_WEIGHTS[position]
    return GB_ALPHABET[(31 - total % 31) % 31]


def test_the_alphabet_has_31_characters_and_no_i_o_s_v_z():
    assert len(GB_ALPHABET) == 31
    assert set("IOSVZ") & set(GB_ALPHABET) == set()


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("91350100M000100Y4", "3"),  # the example printed in guides to the standard
        ("00000000000000000", "0"),  # sum 0: (31 - 0) % 31 = 0
        ("10000000000000000", "Y"),  # sum 1: (31 - 1) % 31 = 30, the last character
        ("91110108551385082", "Q"),  # a company registered in Beijing's Haidian district
        ("91110000000000001", "H"),
        ("YYYYYYYYYYYYYYYYY", "T"),
    ],
)
def test_known_valid_codes(first17, check):
    code = first17 + check

    assert gb_check(first17) == check
    assert check_character(first17) == check
    assert credit_code_problem(code) is None
    assert normalise_credit_code(code) == code


def test_a_code_is_normalised_to_upper_case_without_spaces():
    assert normalise_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert normalise_credit_code("9135 0100 M000 100Y 43") == "91350100M000100Y43"
    assert normalise_credit_code("") is None
    assert normalise_credit_code("   ") is None
    assert normalise_credit_code(None) is None


valid_chars = st.sampled_from(GB_ALPHABET)
first17s = st.text(alphabet=GB_ALPHABET, min_size=17, max_size=17)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first17=first17s, position=st.integers(0, 17), replacement=valid_chars)
def test_a_computed_code_is_accepted_and_any_one_change_is_refused(first17, position, replacement):
    code = first17 + gb_check(first17)
    assert credit_code_problem(code) is None
    assert normalise_credit_code(code) == code

    if replacement == code[position]:
        replacement = GB_ALPHABET[(GB_ALPHABET.index(replacement) + 1) % 31]
    changed = code[:position] + replacement + code[position + 1 :]

    assert credit_code_problem(changed) == "check"
    with pytest.raises(ValidationFailed) as caught:
        normalise_credit_code(changed)
    assert caught.value.details == {"credit_code": "check"}


VALID = "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "problem", "message"),
    [
        (
            "91350100M000100Y4",
            "length",
            "A unified social credit code has 18 characters; “91350100M000100Y4” has 17.",
        ),
        (
            "91350100M000100Y433",
            "length",
            "A unified social credit code has 18 characters; “91350100M000100Y433” has 19.",
        ),
        *[
            (
                VALID[:8] + letter + VALID[9:],
                "characters",
                f"“{VALID[:8] + letter + VALID[9:]}” has characters a unified social credit code "
                "never uses (I, O, S, V, Z).",
            )
            for letter in "IOSVZ"
        ],
        (
            "91350100M000100Y44",
            "check",
            "“91350100M000100Y44” is not a valid unified social credit code: its check "
            "character is wrong.",
        ),
    ],
)
def test_a_bad_code_is_refused_with_a_clear_message(code, problem, message):
    assert credit_code_problem(code) == problem
    with pytest.raises(ValidationFailed) as caught:
        normalise_credit_code(code)

    assert caught.value.message == message
    assert caught.value.details == {"credit_code": problem}


def _state() -> tuple[int, int, int]:
    return (
        Account.objects.count(),
        AuditEvent.objects.count(),
        AccountQualification.objects.count(),
    )


@pytest.mark.parametrize("code", ["91350100M000100Y4", "91350100M00O100Y43", "91350100M000100Y44"])
def test_an_account_with_a_bad_code_is_not_created(org, code):
    before = _state()

    with pytest.raises(ValidationFailed):
        account_create(actor=org["seller"], name="坏代码公司", credit_code=code)

    assert _state() == before
    assert not Account.objects.filter(name="坏代码公司").exists()


@pytest.mark.parametrize("code", ["91350100M000100Y4", "91350100M00O100Y43", "91350100M000100Y44"])
def test_an_account_is_not_changed_to_a_bad_code(account, code):
    old_code = account.credit_code
    before = _state()

    with pytest.raises(ValidationFailed):
        account_update(account=account, actor=account.owner, credit_code=code, name="改名")

    account.refresh_from_db()
    assert (account.credit_code, account.name) == (old_code, "华北电力集团")
    assert _state() == before


def test_an_account_stores_the_normalised_code(org):
    account = account_create(actor=org["seller"], name="福建客户", credit_code="91350100m000100y43")

    account.refresh_from_db()
    assert account.credit_code == VALID
