"""The account pages: the list (visibility, filters, totals, sorting), the account page (ICP fit
in both languages, group tree without leaks, contacts, opportunities), the create and edit
forms with the service's errors shown and nothing typed lost, and fixed query counts."""

import re
from decimal import Decimal
from typing import Any

import pytest

from loudou.customers.models import Account, AccountQualification, Contact
from loudou.customers.services import account_create, contact_create
from loudou.pipeline import services as ps
from loudou.pipeline.models import LostReason
from tests.conftest import credit_code


def names(html: str) -> list[str]:
    """The account names the list shows, in order."""
    return re.findall(r'class="account-name">([^<]*)</a>', html)


def make(actor: Any, name: str, n: int, **kw: Any) -> Account:
    kw.setdefault("industry", "manufacturing")
    kw.setdefault("size_band", "large")
    kw.setdefault("organisations_count", 5)
    kw.setdefault("it_need", "集团管控")
    kw.setdefault("product_fit", "财务")
    return account_create(actor=actor, name=name, credit_code=credit_code(n), **kw)


@pytest.fixture
def accounts(org: dict[str, Any], account: Account) -> dict[str, Account]:
    """Beijing: 华北电力集团 (seller, target, power) and 北京小店 (seller, not target, retail,
    small); 首钢集团 (teammate, Beijing); 天津港集团 (tj_seller); 上海汽车集团 (sh_seller)."""
    return {
        "power": account,
        "shop": make(
            org["seller"],
            "北京小店",
            2,
            industry="retail",
            size_band="small",
            organisations_count=1,
            it_need="",
            product_fit="",
        ),
        "steel": make(org["teammate"], "首钢集团", 3),
        "port": make(org["tj_seller"], "天津港集团", 4, industry="logistics"),
        "saic": make(org["sh_seller"], "上海汽车集团", 5),
    }


def test_list_shows_only_the_accounts_each_user_may_see(
    accounts: dict[str, Account], client_for: Any
) -> None:
    assert names(client_for("seller").get("/accounts/").content.decode()) == [
        "北京小店",
        "华北电力集团",
    ]
    assert names(client_for("manager").get("/accounts/").content.decode()) == [
        "北京小店",
        "华北电力集团",
        "首钢集团",
    ]
    assert names(client_for("north_manager").get("/accounts/").content.decode()) == [
        "北京小店",
        "华北电力集团",
        "天津港集团",
        "首钢集团",
    ]
    assert names(client_for("executive").get("/accounts/").content.decode()) == [
        "上海汽车集团",
        "北京小店",
        "华北电力集团",
        "天津港集团",
        "首钢集团",
    ]
    assert names(client_for("sh_seller").get("/accounts/").content.decode()) == ["上海汽车集团"]


def test_a_team_member_sees_the_account_of_a_deal_they_work_on(
    accounts: dict[str, Account], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    opp = walker.create()
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["sh_seller"], role="presales_consultant"
    )
    assert names(client_for("sh_seller").get("/accounts/").content.decode()) == [
        "上海汽车集团",
        "华北电力集团",
    ]


def test_filters_give_exact_results(accounts: dict[str, Account], client_for: Any) -> None:
    client = client_for("executive")

    def listed(query: str) -> list[str]:
        return names(client.get(f"/accounts/?{query}").content.decode())

    # Logistics is not a target industry of the seed's ICP: the port group is not a target.
    assert listed("target=yes") == ["上海汽车集团", "华北电力集团", "首钢集团"]
    assert listed("target=no") == ["北京小店", "天津港集团"]
    assert listed(f"industry={accounts['port'].industry_id}") == ["天津港集团"]
    assert listed(f"industry={accounts['steel'].industry_id}&target=yes") == [
        "上海汽车集团",
        "首钢集团",
    ]
    assert listed("q=集团") == ["上海汽车集团", "华北电力集团", "天津港集团", "首钢集团"]
    assert listed("q=北京") == ["北京小店"]
    assert listed(f"q={credit_code(4)}") == ["天津港集团"]
    assert listed(f"owner={accounts['steel'].owner_id}") == ["首钢集团"]
    assert listed("q=nothing-like-this") == []
    assert "No accounts match these filters." in client.get("/accounts/?q=zzz").content.decode()


def test_list_counts_open_deals_and_amounts_and_sorts_by_them(
    accounts: dict[str, Account], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    walker.create(name="A", amount="1000000")
    walker.create(name="B", amount="500000")
    lost = walker.create(name="C", amount="9000000")
    reason = LostReason.objects.first()
    ps.opportunity_lose(opportunity=lost, actor=org["seller"], reason=reason.key, note="Budget cut")
    html = client_for("seller").get("/accounts/?sort=-amount").content.decode()
    row = html[html.index("华北电力集团") :]
    row = row[: row.index("</tr>")]
    # Two open deals (the lost one counts for neither number).
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["2", "¥1,500,000"]
    assert names(html) == ["华北电力集团", "北京小店"]
    assert names(client_for("seller").get("/accounts/?sort=amount").content.decode()) == [
        "北京小店",
        "华北电力集团",
    ]


def test_list_totals_leave_out_deals_the_user_may_not_see(
    accounts: dict[str, Account], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    walker.create(name="Seller's", amount="1000000")
    opp = walker.create(name="Shared", amount="300000")
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["sh_seller"], role="presales_consultant"
    )
    html = client_for("sh_seller").get("/accounts/").content.decode()
    row = html[html.index("华北电力集团") :]
    row = row[: row.index("</tr>")]
    assert "¥300,000" in row and "¥1,300,000" not in row


def test_pages_need_a_sign_in(accounts: dict[str, Account], client: Any) -> None:
    pk = accounts["power"].pk
    contact = Contact.objects.get(account_id=pk)
    for url in [
        "/accounts/",
        "/accounts/new/",
        f"/accounts/{pk}/",
        f"/accounts/{pk}/edit/",
        f"/accounts/{pk}/contacts/new/",
        f"/accounts/{pk}/contacts/{contact.pk}/edit/",
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    response = client.post(f"/accounts/{pk}/qualify/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert AccountQualification.objects.filter(account_id=pk).count() == 1


def test_other_branches_get_404_everywhere(accounts: dict[str, Account], client_for: Any) -> None:
    pk = accounts["power"].pk
    contact = Contact.objects.get(account_id=pk)
    before = (Account.objects.get(pk=pk).name, Contact.objects.count())
    for name in ("sh_seller", "tj_seller", "teammate", "sh_manager"):
        client = client_for(name)
        for url in [
            f"/accounts/{pk}/",
            f"/accounts/{pk}/edit/",
            f"/accounts/{pk}/contacts/new/",
            f"/accounts/{pk}/contacts/{contact.pk}/edit/",
        ]:
            assert client.get(url).status_code == 404, (name, url)
        assert client.post(f"/accounts/{pk}/edit/", {"name": "Hacked"}).status_code == 404
        assert client.post(f"/accounts/{pk}/contacts/new/", {"name": "X"}).status_code == 404
        assert client.post(f"/accounts/{pk}/qualify/").status_code == 404
    assert (Account.objects.get(pk=pk).name, Contact.objects.count()) == before
    assert AccountQualification.objects.filter(account_id=pk).count() == 1
    # A contact of another account is not reachable through a visible one either.
    other = Contact.objects.create(account=accounts["saic"], name="Other")
    assert client_for("seller").get(f"/accounts/{pk}/contacts/{other.pk}/edit/").status_code == 404


def test_detail_for_the_owner_and_the_manager(
    accounts: dict[str, Account], walker: Any, client_for: Any
) -> None:
    opp = walker.create(name="财务共享平台", amount="1000000")
    for name in ("seller", "manager", "north_manager", "executive"):
        response = client_for(name).get(f"/accounts/{accounts['power'].pk}/")
        assert response.status_code == 200, name
        html = response.content.decode()
        assert "<h1>华北电力集团</h1>" in html
        assert credit_code(1) in html
        assert "Electric power" in html and "Large" in html
        assert "集团财务管控需要信息化" in html and "多组织财务与供应链" in html
        assert f'href="/opportunities/{opp.pk}/"' in html
        assert f'href="/opportunities/new/?account={accounts["power"].pk}"' in html
        assert "Discover potential opportunities" in html and "¥1,000,000" in html


def test_icp_fit_rows_in_english(accounts: dict[str, Account], client_for: Any) -> None:
    html = client_for("seller").get(f"/accounts/{accounts['shop'].pk}/").content.decode()
    icp = html[html.index('id="icp"') : html.index('id="opportunities"')]
    rows = re.findall(r'data-criterion="(\w+)">\s*<span class="mark (\w+)"', icp)
    assert rows == [
        ("icp_industry", "no"),
        ("icp_size", "no"),
        ("icp_group", "no"),
        ("icp_it_need", "no"),
        ("icp_product_fit", "no"),
    ]
    assert "A large or medium enterprise" in icp
    assert "Industry Retail is not a target industry." in icp
    assert "Size: Small, not large or medium." in icp
    assert "No need for IT to improve management recorded." in icp
    assert "Not a target account" in html
    power = client_for("seller").get(f"/accounts/{accounts['power'].pk}/").content.decode()
    assert power.count('<span class="mark yes" aria-label="holds">') == 5
    assert "Industry Electric power is a target industry." in power


def test_icp_fit_rows_in_chinese(accounts: dict[str, Account], client_for: Any) -> None:
    html = client_for("seller", "zh-hans").get(f"/accounts/{accounts['shop'].pk}/").content.decode()
    assert "属于制造、金融、电信、证券、保险、电力、烟草、医药等目标行业" in html
    assert "大中型企业" in html
    assert "多组织、多工厂的集团企业" in html
    assert "需要通过信息化提升管理" in html
    assert "符合我方产品的应用特点" in html
    assert "定位目标客户群" in html  # the stage's Chinese name heads the ICP card
    assert "零售" in html  # the industry's Chinese name
    assert "A large or medium enterprise" not in html


def test_group_tree_shows_parent_and_subsidiaries_and_hides_others_details(
    accounts: dict[str, Account], org: dict[str, Any], client_for: Any
) -> None:
    group = make(org["seller"], "国家电网", 10)
    power = accounts["power"]
    ps_sub = make(org["seller"], "华北电力检修公司", 11, parent=power)
    hidden = make(org["sh_seller"], "华东电力公司", 12, parent=group)
    from loudou.customers.services import account_update

    account_update(account=power, actor=org["seller"], parent=group)
    html = client_for("seller").get(f"/accounts/{power.pk}/").content.decode()
    tree = html[html.index('id="group"') : html.index('id="qualifications"')]
    # 国家电网 → 华东电力公司, 华北电力集团 → 华北电力检修公司 (siblings by name)
    assert re.findall(r"--depth: (\d)", tree) == ["0", "1", "1", "2"]
    assert f'href="/accounts/{group.pk}/"' in tree
    assert f'href="/accounts/{ps_sub.pk}/"' in tree
    assert '<span aria-current="page">华北电力集团</span>' in tree
    assert f'href="/accounts/{power.pk}/"' not in tree
    # The other branch's member: its name as plain text, no link, nothing else about it.
    assert "华东电力公司" in tree
    assert f"/accounts/{hidden.pk}/" not in html
    # The group fact links the parent.
    assert f'<a href="/accounts/{group.pk}/">国家电网</a>' in html
    # The Shanghai seller's own account shows the group members it may not open as text only.
    sh = client_for("sh_seller").get(f"/accounts/{hidden.pk}/").content.decode()
    assert "国家电网" in sh and f'href="/accounts/{group.pk}/"' not in sh
    assert f'href="/accounts/{power.pk}/"' not in sh


def test_create_an_account(org: dict[str, Any], playbook: Any, client_for: Any) -> None:
    response = client_for("seller").post(
        "/accounts/new/",
        {
            "name": "  中国烟草总公司  ",
            "credit_code": credit_code(20).lower(),
            "industry": "tobacco",
            "size_band": "large",
            "employees": "5000",
            "organisations_count": "30",
            "revenue": "1,000,000,000",
            "revenue_currency": "",
            "parent": "",
            "it_need": "集团管控",
            "product_fit": "多组织",
        },
    )
    created = Account.objects.get(name="中国烟草总公司")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{created.pk}/"
    assert created.credit_code == credit_code(20)
    assert (created.industry.key, created.size_band, created.employees) == (
        "tobacco",
        "large",
        5000,
    )
    assert (created.revenue, created.revenue_currency) == (Decimal("1000000000.00"), "CNY")
    assert (created.owner, created.branch, created.is_target) == (
        org["seller"],
        org["beijing"],
        True,
    )
    assert created.qualifications.count() == 1


def test_a_manager_creates_an_account_for_a_seller(
    org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    client = client_for("manager")
    form = client.get("/accounts/new/").content.decode()
    assert f'<option value="{org["seller"].pk}">seller</option>' in form
    assert f'value="{org["sh_seller"].pk}"' not in form
    response = client.post(
        "/accounts/new/", {"name": "新客户", "organisations_count": "1", "owner": org["seller"].pk}
    )
    assert response.status_code == 302
    assert Account.objects.get(name="新客户").owner == org["seller"]
    # A seller's form has no owner field, and an owner sent anyway is ignored.
    assert 'name="owner"' not in client_for("seller").get("/accounts/new/").content.decode()


def test_bad_credit_code_keeps_what_was_typed_and_creates_nothing(
    org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    before = Account.objects.count()
    response = client_for("seller").post(
        "/accounts/new/",
        {
            "name": "测试集团",
            "credit_code": "911100000000000000",
            "industry": "finance",
            "size_band": "medium",
            "organisations_count": "3",
            "it_need": "需要财务共享",
            "product_fit": "适合",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "is not a valid unified social credit code: its check character is wrong." in html
    assert 'value="测试集团"' in html and 'value="911100000000000000"' in html
    assert '<option value="finance" selected>' in html
    assert '<option value="medium" selected>' in html
    assert "需要财务共享" in html
    assert Account.objects.count() == before


def test_form_errors_in_chinese(org: dict[str, Any], playbook: Any, client_for: Any) -> None:
    response = client_for("seller", "zh-hans").post(
        "/accounts/new/", {"name": "", "employees": "many", "organisations_count": "1"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "这个字段是必填项。" in html and "输入整数。" in html


def test_edit_an_account_and_refuse_a_cycle(
    accounts: dict[str, Account], org: dict[str, Any], client_for: Any
) -> None:
    power = accounts["power"]
    sub = make(org["seller"], "华北电力检修公司", 11, parent=power)
    client = client_for("seller")
    form = client.get(f"/accounts/{power.pk}/edit/").content.decode()
    assert 'value="华北电力集团"' in form and '<option value="power" selected>' in form
    assert f'<option value="{power.pk}"' not in form  # not its own group
    data = {
        "name": "华北电力集团有限公司",
        "credit_code": power.credit_code,
        "industry": "power",
        "size_band": "large",
        "organisations_count": "12",
        "it_need": "集团财务管控需要信息化",
        "product_fit": "多组织财务与供应链",
        "parent": str(sub.pk),
    }
    refused = client.post(f"/accounts/{power.pk}/edit/", data)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "cannot be the group of" in html and 'value="华北电力集团有限公司"' in html
    power.refresh_from_db()
    assert (power.name, power.parent_id) == ("华北电力集团", None)
    data["parent"] = ""
    data["size_band"] = "small"
    response = client.post(f"/accounts/{power.pk}/edit/", data)
    assert response.status_code == 302
    power.refresh_from_db()
    assert (power.name, power.size_band, power.is_target) == (
        "华北电力集团有限公司",
        "small",
        False,
    )


def test_edit_keeps_a_group_the_editor_cannot_see(
    accounts: dict[str, Account], org: dict[str, Any], client_for: Any
) -> None:
    group = make(org["sh_seller"], "国家电网", 10)
    from loudou.customers.services import account_update

    account_update(account=accounts["power"], actor=org["seller"], parent=group)
    form = client_for("seller").get(f"/accounts/{accounts['power'].pk}/edit/").content.decode()
    assert f'<option value="{group.pk}" selected>国家电网</option>' in form
    # …but one they cannot see cannot be chosen for another account.
    response = client_for("seller").post(
        f"/accounts/{accounts['shop'].pk}/edit/",
        {"name": "北京小店", "organisations_count": "1", "parent": str(group.pk)},
    )
    assert response.status_code == 400
    accounts["shop"].refresh_from_db()
    assert accounts["shop"].parent_id is None


def test_a_team_member_may_read_but_not_edit(
    accounts: dict[str, Account], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    opp = walker.create()
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["sh_seller"], role="presales_consultant"
    )
    client = client_for("sh_seller")
    pk = accounts["power"].pk
    html = client.get(f"/accounts/{pk}/").content.decode()
    assert f'href="/accounts/{pk}/edit/"' not in html and "Add contact" not in html
    assert client.get(f"/accounts/{pk}/edit/").status_code == 403
    assert (
        client.post(f"/accounts/{pk}/edit/", {"name": "X", "organisations_count": "1"}).status_code
        == 403
    )
    assert client.post(f"/accounts/{pk}/contacts/new/", {"name": "X"}).status_code == 403
    assert Account.objects.get(pk=pk).name == "华北电力集团"
    assert Contact.objects.filter(account_id=pk).count() == 1


def test_add_and_edit_a_contact(accounts: dict[str, Account], client_for: Any) -> None:
    client = client_for("seller")
    pk = accounts["power"].pk
    dialog = client.get(f"/accounts/{pk}/contacts/new/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in dialog and 'name="selection_part"' in dialog
    response = client.post(
        f"/accounts/{pk}/contacts/new/",
        {
            "name": "李主任",
            "title": "信息中心主任",
            "email": "li@example.cn",
            "selection_part": "influencer",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/accounts/{pk}/#contacts"
    contact = Contact.objects.get(name="李主任")
    assert (contact.title, contact.selection_part) == ("信息中心主任", "influencer")
    html = client.get(f"/accounts/{pk}/").content.decode()
    row = html[html.index(f'id="contact-{contact.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "李主任" in row and "Influencer" in row and "li@example.cn" in row
    # Edit: a new part in the selection team.
    response = client.post(
        f"/accounts/{pk}/contacts/{contact.pk}/edit/",
        {"name": "李主任", "title": "CIO", "selection_part": "decision_maker"},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.title, contact.selection_part, contact.email) == ("CIO", "decision_maker", "")


def test_a_bad_contact_is_refused_with_its_input_kept(
    accounts: dict[str, Account], client_for: Any
) -> None:
    pk = accounts["power"].pk
    before = Contact.objects.count()
    response = client_for("seller").post(
        f"/accounts/{pk}/contacts/new/",
        {"name": "赵工", "email": "not-an-email", "selection_part": "evaluator"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address." in html
    assert 'value="赵工"' in html and '<option value="evaluator" selected>' in html
    assert Contact.objects.count() == before


def test_qualify_again_and_a_managers_override(
    accounts: dict[str, Account], client_for: Any
) -> None:
    shop = accounts["shop"]
    response = client_for("seller").post(f"/accounts/{shop.pk}/qualify/")
    assert response.status_code == 302
    assert shop.qualifications.count() == 2
    # A seller may not override; a manager must give a reason.
    assert (
        client_for("seller")
        .post(f"/accounts/{shop.pk}/qualify/", {"override": "yes", "reason": "Strategic"})
        .status_code
        == 403
    )
    refused = client_for("manager").post(f"/accounts/{shop.pk}/qualify/", {"override": "yes"})
    assert refused.status_code == 400
    assert "An override needs a reason." in refused.content.decode()
    assert shop.qualifications.count() == 2
    response = client_for("manager").post(
        f"/accounts/{shop.pk}/qualify/", {"override": "yes", "reason": "Flagship store chain"}
    )
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.is_target is True
    html = client_for("seller").get(f"/accounts/{shop.pk}/").content.decode()
    assert "Set by a manager" in html and "Flagship store chain" in html


def test_names_are_escaped(org: dict[str, Any], playbook: Any, client_for: Any) -> None:
    evil = '<script>alert("x")</script> & "Q\'s"'
    acc = account_create(actor=org["seller"], name=evil, it_need=evil, organisations_count=1)
    contact_create(account=acc, actor=org["seller"], name=evil, title=evil)
    client = client_for("seller")
    for url in ["/accounts/", f"/accounts/{acc.pk}/", f"/accounts/{acc.pk}/edit/"]:
        html = client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert (
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Q&#x27;s&quot;" in html
        )


def test_list_query_count_does_not_grow_with_accounts(
    accounts: dict[str, Account],
    walker: Any,
    org: dict[str, Any],
    client_for: Any,
    django_assert_max_num_queries: Any,
) -> None:
    walker.create()
    client = client_for("manager")
    client.get("/accounts/")
    with django_assert_max_num_queries(20) as few:
        client.get("/accounts/")
    for i in range(8):
        make(org["seller"], f"新增集团{i}", 100 + i, parent=accounts["power"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get("/accounts/").content.decode()
    assert len(names(html)) == 11


def test_detail_query_count_does_not_grow_with_contacts_deals_or_members(
    accounts: dict[str, Account],
    walker: Any,
    org: dict[str, Any],
    client_for: Any,
    django_assert_max_num_queries: Any,
) -> None:
    power = accounts["power"]
    make(org["seller"], "子公司0", 200, parent=power)
    walker.create(name="deal 0")
    client = client_for("seller")
    client.get(f"/accounts/{power.pk}/")
    with django_assert_max_num_queries(30) as few:
        client.get(f"/accounts/{power.pk}/")
    for i in range(1, 6):
        make(org["seller"], f"子公司{i}", 200 + i, parent=power)
        walker.create(name=f"deal {i}")
        contact_create(account=power, actor=org["seller"], name=f"联系人{i}", selection_part="user")
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(f"/accounts/{power.pk}/").content.decode()
    assert html.count('href="/opportunities/') - html.count("/opportunities/new/") == 6
    assert html.count('id="contact-') == 6
