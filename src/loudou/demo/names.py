"""The vocabulary of the demo company: people, customers, competitors and what sellers write.

Everything here is fictional; customer brands are made-up word pairs, competitors are the
vendors and consultants a Chinese ERP seller really meets in deals.
"""

# --- our organisation ---------------------------------------------------------------------

COMPANY = ("hq", "总部", "Head office")
REGIONS = [
    ("huabei", "华北区", "North China"),
    ("huadong", "华东区", "East China"),
    ("huanan", "华南区", "South China"),
]
# (code, name, English name, region code, city, districts used in credit codes)
BRANCHES = [
    ("bj", "北京分公司", "Beijing branch", "huabei", "北京", ("110105", "110108", "110102")),
    ("tj", "天津分公司", "Tianjin branch", "huabei", "天津", ("120116", "120104")),
    ("sh", "上海分公司", "Shanghai branch", "huadong", "上海", ("310115", "310104", "310106")),
    ("hz", "杭州分公司", "Hangzhou branch", "huadong", "杭州", ("330106", "330108")),
    ("gz", "广州分公司", "Guangzhou branch", "huanan", "广州", ("440106", "440104")),
    ("sz", "深圳分公司", "Shenzhen branch", "huanan", "深圳", ("440305", "440304")),
]

# (username, display name, branch code, job role, access level). `admin`, `seller` and `manager`
# are the predictable demo logins; the others are pinyin of their display names.
PEOPLE = [
    ("admin", "系统管理员", "hq", "", "admin"),
    ("chen.zhiyuan", "陈志远", "hq", "executive", "executive"),
    ("lin.huimin", "林慧敏", "hq", "executive", "executive"),
    ("zhou.jie", "周杰", "hq", "product_expert", "seller"),
    ("xu.li", "徐丽", "hq", "product_expert", "seller"),
    ("he.jun", "何军", "hq", "industry_expert", "seller"),
    ("ma.lin", "马林", "hq", "project_manager", "seller"),
    ("sun.hao", "孙浩", "hq", "project_manager", "seller"),
    ("zhu.ying", "朱颖", "hq", "implementation_consultant", "seller"),
    ("zhao.gang", "赵刚", "huabei", "sales_director", "manager"),
    ("qian.lei", "钱磊", "huadong", "sales_director", "manager"),
    ("huang.wei", "黄伟", "huanan", "sales_director", "manager"),
    ("song.yu", "宋宇", "huabei", "presales_consultant", "seller"),
    ("tang.min", "唐敏", "huadong", "presales_consultant", "seller"),
    ("feng.tao", "冯涛", "huanan", "presales_consultant", "seller"),
    ("manager", "王建国", "bj", "branch_gm", "manager"),
    ("seller", "李娜", "bj", "account_manager", "seller"),
    ("zhang.wei", "张伟", "bj", "account_manager", "seller"),
    ("liu.yang", "刘洋", "bj", "account_manager", "seller"),
    ("yang.fan", "杨帆", "tj", "branch_gm", "manager"),
    ("wu.qiang", "吴强", "tj", "account_manager", "seller"),
    ("zheng.hui", "郑辉", "sh", "branch_gm", "manager"),
    ("xie.ting", "谢婷", "sh", "account_manager", "seller"),
    ("luo.bin", "罗斌", "sh", "account_manager", "seller"),
    ("gao.xiang", "高翔", "sh", "account_manager", "seller"),
    ("han.mei", "韩梅", "hz", "branch_gm", "manager"),
    ("cao.yong", "曹勇", "hz", "account_manager", "seller"),
    ("deng.jing", "邓静", "hz", "account_manager", "seller"),
    ("xiao.feng", "肖峰", "gz", "branch_gm", "manager"),
    ("peng.li", "彭丽", "gz", "account_manager", "seller"),
    ("jiang.hao", "蒋浩", "gz", "account_manager", "seller"),
    ("lu.chen", "卢晨", "sz", "branch_gm", "manager"),
    ("cai.lin", "蔡琳", "sz", "account_manager", "seller"),
    ("pan.yi", "潘毅", "sz", "account_manager", "seller"),
]

# --- customers ----------------------------------------------------------------------------

# The industries of the ICP come first; the last four are not target industries.
ICP_INDUSTRIES = [
    "manufacturing",
    "finance",
    "telecom",
    "securities",
    "insurance",
    "power",
    "tobacco",
    "pharma",
]
OTHER_INDUSTRIES = ["retail", "construction", "logistics", "education"]

# Made-up brands: (Chinese, pinyin).
BRANDS = [
    ("恒达", "hengda"),
    ("中联", "zhonglian"),
    ("远航", "yuanhang"),
    ("金桥", "jinqiao"),
    ("鼎盛", "dingsheng"),
    ("宏图", "hongtu"),
    ("海川", "haichuan"),
    ("瑞丰", "ruifeng"),
    ("天成", "tiancheng"),
    ("永泰", "yongtai"),
    ("新元", "xinyuan"),
    ("博远", "boyuan"),
    ("安泰", "antai"),
    ("盛世", "shengshi"),
    ("泰和", "taihe"),
    ("鸿运", "hongyun"),
    ("嘉禾", "jiahe"),
    ("宝丰", "baofeng"),
    ("华信", "huaxin"),
    ("东方", "dongfang"),
    ("长城", "changcheng"),
    ("正泰", "zhengtai"),
    ("万通", "wantong"),
    ("联创", "lianchuang"),
    ("国润", "guorun"),
    ("润泽", "runze"),
    ("汇金", "huijin"),
    ("启明", "qiming"),
    ("星河", "xinghe"),
    ("巨力", "juli"),
    ("九州", "jiuzhou"),
    ("凯瑞", "kairui"),
    ("同创", "tongchuang"),
    ("中科", "zhongke"),
    ("兴业", "xingye"),
    ("信达", "xinda"),
    ("华瑞", "huarui"),
    ("国泰", "guotai"),
    ("卓越", "zhuoyue"),
    ("昌盛", "changsheng"),
]

# What a group of the industry is called, and what its subsidiaries are.
INDUSTRY_WORDS = {
    "manufacturing": ("重工", ["机械制造", "汽车零部件", "精密装备", "电子科技", "铸造"]),
    "finance": ("金融控股", ["融资租赁", "资产管理", "小额贷款", "商业保理"]),
    "telecom": ("通信", ["网络工程", "信息服务", "通信设备", "数据科技"]),
    "securities": ("证券", ["期货", "投资咨询", "资本管理"]),
    "insurance": ("保险", ["人寿保险", "财产保险", "保险代理", "健康管理"]),
    "power": ("能源", ["发电", "新能源", "电力工程", "售电"]),
    "tobacco": ("烟草工业", ["卷烟厂", "烟叶复烤", "物资配送"]),
    "pharma": ("药业", ["制药", "医药商业", "生物技术", "医疗器械"]),
    "retail": ("商业", ["百货", "连锁超市", "电子商务"]),
    "construction": ("建工", ["建筑安装", "路桥工程", "装饰工程"]),
    "logistics": ("物流", ["仓储", "运输", "供应链管理"]),
    "education": ("教育科技", ["培训学校", "教育服务"]),
}

IT_NEEDS = [
    "下属单位核算口径不统一，集团无法及时出具合并报表",
    "多工厂库存与采购分散管理，需要集团供应链协同",
    "现有系统分散建设，信息孤岛严重，需统一管理平台",
    "资金分散在数十家银行账户，需集中资金管控",
    "集团预算靠表格编制，需全面预算管理系统",
    "人员规模扩大，人力资源管理需要信息化支撑",
    "监管报送要求提高，需提升财务数据质量",
    "成本核算粗放，需精细化成本管理",
]
PRODUCT_FITS = [
    "多组织财务与集团管控，符合我方集团财务方案",
    "制造业供应链与生产管理，与我方制造方案匹配",
    "财务共享服务中心，我方有同行业成功案例",
    "集团资金与预算一体化，符合我方产品应用特点",
    "人力资源共享与薪酬管理，我方产品覆盖",
    "多组织供应链协同，我方产品成熟",
]

# (title, part in the selection team)
CONTACT_ROLES = [
    ("总经理", "decision_maker"),
    ("财务总监", "decision_maker"),
    ("分管信息化副总裁", "decision_maker"),
    ("信息中心主任", "influencer"),
    ("财务部经理", "influencer"),
    ("IT经理", "evaluator"),
    ("采购部经理", "evaluator"),
    ("财务主管", "user"),
    ("总账会计", "user"),
    ("仓储主管", "user"),
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN_NAMES = [
    "建华",
    "国强",
    "志明",
    "晓东",
    "丽华",
    "秀英",
    "海燕",
    "文博",
    "春梅",
    "宏伟",
    "立新",
    "玉兰",
    "子轩",
    "思远",
    "美玲",
    "振华",
    "卫东",
    "静怡",
    "俊杰",
    "红梅",
]

# --- deals --------------------------------------------------------------------------------

PROJECTS = [
    "集团财务共享平台",
    "供应链协同平台",
    "人力资源管理系统",
    "集团合并报表系统",
    "全面预算管理项目",
    "资金管理系统",
    "成本管理系统",
    "数字化采购平台",
    "税务管理平台",
    "主数据管理平台",
    "固定资产管理系统",
    "生产制造管理系统",
    "ERP系统升级",
    "营销管理系统",
    "项目管理系统",
]
SOURCES = [
    "老客户推荐",
    "市场活动（行业峰会）",
    "官网咨询",
    "渠道伙伴推荐",
    "客户来电",
    "高层拜访",
    "招标公告",
    "陌生拜访",
]
NEED_OPENINGS = ["财务总监提出", "信息中心主任反映", "总经理在拜访中提到", "IT经理来电说明"]

# (name, kind)
VENDORS = [
    "SAP",
    "Oracle",
    "金蝶",
    "浪潮",
    "鼎捷软件",
    "Microsoft Dynamics",
    "远光软件",
    "新中大",
    "Infor",
]
CONSULTANTS = ["德勤咨询", "埃森哲", "普华永道", "安永咨询", "毕马威", "IBM咨询", "汉普咨询"]

INTENT_NOTES = {
    "interested": ["客户主动邀请再次交流", "CIO要求提供产品资料", "客户参加了我方产品发布会"],
    "accepts_packaged": ["客户明确不自行开发", "客户倾向采购成熟商品化软件"],
    "preliminary_requirements": ["收到客户初步需求清单", "客户整理了各业务部门需求"],
    "contacting_vendors": ["客户已接触两家软件厂商", "客户请了咨询公司做规划"],
}
PROJECT_NOTES = {
    "recognises_us": ["产品方向介绍后客户反馈积极", "客户认可我方行业案例"],
    "has_requirement": ["客户发来正式需求说明书", "需求调研纪要已经客户确认"],
    "guiding": ["已发送白皮书并完成产品方向介绍", "组织客户参观标杆企业"],
}
RECOGNITION_NOTES = {
    "product_accepted": ["概要演示获客户认可", "客户确认产品可满足核心需求"],
    "shortlisted": ["进入客户备选名单", "客户选型小组确认入围"],
}
NEGOTIATION_NOTES = {
    "accepted_us": ["客户高层认可我方方案", "选型小组推荐我方"],
    "sole_or_shortlisted": ["客户确认我方为唯一供应商", "入围最后两家"],
}
SIGNED_NOTES = ["合同已签订", "双方盖章合同已归档", "合同签订仪式已完成"]

OBJECTIONS = [
    ("价格高于客户预算", "调整实施范围并给出分期付款方案"),
    ("实施周期太长", "提供分阶段上线计划，首期三个月上线"),
    ("担心与现有MES系统的集成", "安排技术团队演示标准接口"),
    ("希望看到同行业成功案例", "组织参观同行业标杆客户"),
    ("对售后服务响应有顾虑", "承诺本地服务团队和7×24小时响应"),
    ("要求源代码托管", "同意第三方源代码托管安排"),
]
ACTIVITY_SUBJECTS = {
    "visit": ["初次拜访客户", "拜访信息中心主任", "高层拜访"],
    "presentation": ["产品方向介绍", "解决方案汇报", "行业案例分享"],
    "demo": ["产品概要演示", "核心业务场景演示"],
    "meeting": ["商务谈判会议", "合同条款沟通", "投标澄清会"],
}
ACTIVITY_OUTCOMES = ["客户反馈积极", "确认了下一步计划", "客户提出补充需求", "会议纪要已发送"]

APPROVAL_REJECTIONS = [
    "预算尚未落实，请补充客户预算审批依据",
    "选型小组和领导支持情况不清楚，请补充",
    "竞争态势不明，请先摸清竞争对手",
]
APPROVAL_COMMENTS = [
    "同意立项，请尽快组建项目小组",
    "同意",
    "重点项目，同意立项",
    "同意，注意控制折扣",
]
REGRESS_REASONS = [
    "客户高层变动，需要重新确认项目范围",
    "客户要求重新评估需求",
    "客户选型小组调整，退回重新引导",
]
REOPEN_REASONS = ["客户重新启动项目", "客户预算获批，项目重启", "新任领导重新推动项目"]
WON_REOPEN_REASONS = ["客户要求调整合同范围，重新谈判"]
OVERRIDE_COMPETITION = "客户尚未公开其他厂商，但项目已获客户高层支持，特批推进"
OVERRIDE_CLOSE_DATE = "战略客户，签约周期较长但意向明确，特批推进"
PUSH_REASONS = ["客户推迟决策", "客户内部审批延后", "招标时间推迟"]
LOST_NOTES = {
    "price": ["竞争对手报价低约30%", "客户预算压缩，选择低价方案"],
    "functionality": ["行业特殊需求我方产品不满足", "客户要求的移动端功能不足"],
    "competitor_relationship": ["竞争对手与客户高层关系更紧密", "客户沿用原有厂商"],
    "no_budget": ["客户当年预算被砍", "预算未获董事会批准"],
    "project_cancelled": ["客户项目搁置", "客户集团重组，项目取消"],
    "no_decision": ["客户迟迟不做决定", "客户长期无回应"],
    "dropped": ["项目规模太小，我方主动放弃", "付款条件不可接受，主动放弃"],
    "other": ["客户被并购", "其他原因"],
}
