"""ICP fit (stage 1) and who sees which accounts."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import translation

from loudou.customers.models import Account
from loudou.customers.selectors import account_group_tree, icp_fit
from loudou.customers.services import account_create, account_qualify
from loudou.pipeline.services.project import team_member_add
from loudou.playbooks.services import playbook_load_file


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The org fixture creates nine users; hashing their passwords slowly is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


FITS = {
    "industry": "power",
    "size_band": "large",
    "organisations_count": 12,
    "it_need": "集团财务管控需要信息化",
    "product_fit": "多组织财务与供应链",
}
TEXTS = {
    "icp_industry": "In a target industry: manufacturing, finance, telecom, securities, "
    "insurance, electric power, tobacco, pharmaceuticals or a like one",
    "icp_size": "A large or medium enterprise",
    "icp_group": "A group enterprise with several organisations or sites",
    "icp_it_need": "Needs IT to improve its management",
    "icp_product_fit": "Fits our product's application profile",
}
FITTING_REASONS = {
    "icp_industry": "Industry Electric power is a target industry.",
    "icp_size": "Size: Large.",
    "icp_group": "A group with 12 organisations or sites (0 subsidiaries recorded).",
    "icp_it_need": "IT need: 集团财务管控需要信息化",
    "icp_product_fit": "Product fit: 多组织财务与供应链",
}
KEYS = list(TEXTS)


def test_a_fitting_account_meets_all_five_criteria(account, playbook):
    assert icp_fit(account, playbook) == [
        {
            "key": key,
            "text": TEXTS[key],
            "holds": True,
            "reason": FITTING_REASONS[key],
            "required": True,
        }
        for key in KEYS
    ]
    assert account.is_target is True
    latest = account.qualifications.latest("at", "id")
    assert (latest.is_target, latest.overridden, latest.playbook) == (True, False, playbook)
    assert latest.results == icp_fit(account, playbook)


@pytest.mark.parametrize(
    ("change", "failing", "reason"),
    [
        ({"industry": "retail"}, "icp_industry", "Industry Retail is not a target industry."),
        ({"industry": None}, "icp_industry", "Industry not recorded."),
        ({"size_band": "small"}, "icp_size", "Size: Small, not large or medium."),
        ({"size_band": ""}, "icp_size", "Size not recorded."),
        ({"organisations_count": 1}, "icp_group", "A single organisation and site."),
        ({"it_need": ""}, "icp_it_need", "No need for IT to improve management recorded."),
        ({"it_need": "   "}, "icp_it_need", "No need for IT to improve management recorded."),
        ({"product_fit": ""}, "icp_product_fit", "No fit with our product recorded."),
    ],
)
def test_an_account_failing_one_criterion_is_not_a_target(org, playbook, change, failing, reason):
    account = account_create(actor=org["seller"], name="候选客户", **{**FITS, **change})

    results = icp_fit(account, playbook)

    assert [(r["key"], r["holds"]) for r in results] == [(k, k != failing) for k in KEYS]
    assert {r["key"]: r["reason"] for r in results}[failing] == reason
    assert account.is_target is False
    account.refresh_from_db()
    assert account.is_target is False


def test_icp_reasons_follow_the_language(account, playbook):
    with translation.override("zh-hans"):
        results = icp_fit(account, playbook)

    assert results[0]["text"] == "属于制造、金融、电信、证券、保险、电力、烟草、医药等目标行业"
    assert results[3]["reason"].endswith("集团财务管控需要信息化")


def test_a_group_recorded_through_its_subsidiaries_counts_as_multi_org(org, playbook):
    group = account_create(actor=org["seller"], name="某集团", **{**FITS, "organisations_count": 1})
    assert group.is_target is False

    account_create(actor=org["seller"], name="某集团一厂", parent=group, **FITS)
    results = icp_fit(group, playbook)

    assert [r["holds"] for r in results] == [True] * 5
    assert (
        results[2]["reason"] == "A group with 2 organisations or sites (1 subsidiaries recorded)."
    )
    account_qualify(account=group, actor=org["seller"])
    group.refresh_from_db()
    assert group.is_target is True
    assert [(d, a.name) for d, a in account_group_tree(group)] == [(0, "某集团"), (1, "某集团一厂")]


def test_adding_a_subsidiary_requalifies_its_group(org):
    group = account_create(actor=org["seller"], name="某集团", **{**FITS, "organisations_count": 1})

    account_create(actor=org["seller"], name="某集团一厂", parent=group, **FITS)

    group.refresh_from_db()
    assert group.is_target is True


def test_a_playbook_without_an_account_stage_has_no_icp(account, playbooks):
    assert icp_fit(account, playbooks["simple"]) == []


SIZE_LARGE_ONLY = """\
key: large-only
name: {zh: 仅大型, en: Large only}
stages:
  - key: target
    kind: account
    name: {zh: 目标, en: Target}
    criteria:
      - {key: big, kind: field, condition: "size_in:large", text: {zh: 大型, en: Large}}
  - {key: open, kind: open, name: {zh: 进行中, en: Open}, probability: 50}
  - {key: won, kind: won, name: {zh: 赢单, en: Won}, probability: 100}
"""


def test_the_size_reason_names_the_sizes_of_the_condition(org, tmp_path):
    path = tmp_path / "large-only.yaml"
    path.write_text(SIZE_LARGE_ONLY, encoding="utf-8")
    large_only, _created = playbook_load_file(path=path)
    account = account_create(actor=org["seller"], name="中型客户", size_band="medium")

    [result] = icp_fit(account, large_only)

    assert result["holds"] is False
    assert "medium" not in result["reason"].split(",", 1)[1]


# --- visibility ----------------------------------------------------------------------------


@pytest.fixture
def accounts(org, account):
    """One account per selling branch: Beijing (the fixture's), Tianjin, Shanghai."""
    return {
        "beijing": account,
        "tianjin": account_create(actor=org["tj_seller"], name="天津港集团"),
        "shanghai": account_create(actor=org["sh_seller"], name="上海医药集团"),
    }


def visible(user) -> list[str]:
    return sorted(Account.objects.visible_to(user).values_list("name", flat=True))


ALL = sorted(["华北电力集团", "天津港集团", "上海医药集团"])


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("seller", ["华北电力集团"]),
        ("teammate", []),
        ("tj_seller", ["天津港集团"]),
        ("sh_seller", ["上海医药集团"]),
        ("manager", ["华北电力集团"]),
        ("north_manager", sorted(["华北电力集团", "天津港集团"])),
        ("sh_manager", ["上海医药集团"]),
        ("executive", ALL),
        ("admin", ALL),
    ],
)
def test_each_user_sees_the_accounts_the_visibility_rule_allows(accounts, org, who, sees):
    assert visible(org[who]) == sees


def test_anonymous_and_inactive_users_see_no_account(accounts, org):
    org["executive"].is_active = False

    assert visible(AnonymousUser()) == []
    assert visible(None) == []
    assert visible(org["executive"]) == []


def test_a_project_team_member_sees_the_account(accounts, org, walker):
    opp = walker.create()
    assert visible(org["sh_seller"]) == ["上海医药集团"]

    team_member_add(
        opportunity=opp, actor=org["seller"], user=org["sh_seller"], role="presales_consultant"
    )

    assert visible(org["sh_seller"]) == sorted(["上海医药集团", "华北电力集团"])
