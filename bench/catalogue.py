"""The list, measure and scenario catalogue of generated sources, drawn from the seed texts.

Sources (``/work/shared/seeds``):

* 失信被执行人: 福建省《关于加快推进失信被执行人信用监督、警示和惩戒机制建设的实施意见》
  (省委办公厅、省政府办公厅, 2016-12-28) implementing the national memorandum
  发改财金〔2016〕141号 — the measures ``M-GP-1`` … ``M-SUP-1`` follow its 二（一）…（十）.
* 泉政文〔2018〕51号 (Quanzhou): 重点关注名单, and black-list exit moves the subject to it
  (``exit_watch_list``); 连续三年无不良信用记录 → 绿色通道/容缺受理 (``clean_years: 3``).
* 福建省公共信用信息管理暂行办法: 社会公开 / 政务共享 / 授权查询 publicity (第二十二条),
  natural persons only by 授权查询 (第二十三条), 第三十四–三十九条 incentives and penalties.
* 福建省电梯维保质量安全诚信体系建设实施方案（试行）: elevator black list for 1 year, 2/3/4
  years after 较大/重大/特别重大 accidents.
* 通化 (Jilin) plan: 异议处理阶段联合惩戒措施不停止执行 → ``objection_suspends: false``.
* 厦自贸委〔2016〕109号, 闽政〔2017〕3号: red-list priority in procurement, funds, licensing.
* 企业环境信用评价 (环发〔2013〕150号, Fujian opinion): 诚信 / 警示 / 不良 enterprises.
* 榕运管〔2017〕243号 and the 宁德 transport plan: road transport black list, 一票否决.

Document numbers not in the seeds but cited by them as the national memoranda
(发改财金〔2014〕3062号, 〔2016〕1467号, 〔2016〕2190号, 财库〔2016〕125号) are the real ones.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

SCENARIOS: tuple[Record, ...] = tuple({"code": c, "name": n} for c, n in (
    ("government_procurement", "政府采购"),
    ("bidding", "招标投标"),
    ("administrative_license", "行政审批（行政许可）"),
    ("fiscal_funds", "财政资金及政府补贴"),
    ("customs_clearance", "海关通关"),
    ("customs_certification", "海关企业认证"),
    ("honors", "评先评优（表彰奖励）"),
    ("soe_appointment", "国有企业董事、监事、高级管理人员任职"),
    ("financing", "融资授信"),
    ("social_org_registration", "社会组织登记"),
    ("state_asset_transaction", "国有产权和不动产交易"),
    ("high_consumption", "限制消费核查（乘坐飞机、列车软卧、星级宾馆等）"),
))


def _list(code: str, name: str, kind: str, authority: str, publicity: str, *,
          suspends: bool = True, watch_days: int | None = None) -> Record:
    rec: Record = {"code": code, "name": name, "kind": kind, "authority": authority,
                   "publicity": publicity, "objection_suspends": suspends}
    if watch_days is not None:
        rec["exit_watch_list"] = "watch.after_black"
        rec["exit_watch_days"] = watch_days
    return rec


LISTS: tuple[Record, ...] = (
    _list("court.dishonest_debtor", "失信被执行人名单", "black", "最高人民法院", "public",
          watch_days=365),
    _list("tax.major_violation", "重大税收违法失信主体名单", "black", "国家税务总局", "public",
          watch_days=730),
    _list("procurement.serious_violation", "政府采购严重违法失信行为记录名单", "black", "财政部",
          "public"),
    _list("sse.elevator_maintenance", "电梯维保单位质量安全“黑名单”", "black",
          "福建省市场监督管理局", "public"),
    _list("env.bad_enterprise", "环保不良企业名单", "black", "福建省生态环境厅", "public"),
    _list("transport.fuzhou_road", "福州市道路运输市场主体“黑名单”", "black",
          "福州市道路运输管理处", "public", watch_days=180),
    _list("tonghua.serious_dishonest", "通化市严重失信主体名单", "black",
          "通化市社会信用体系建设领导小组办公室", "public", suspends=False),
    _list("credit.person_serious", "严重失信自然人名单（公共信用信息综合评价）", "black",
          "福建省公共信用信息中心", "authorized"),
    _list("watch.after_black", "重点关注名单（黑名单退出后）", "watch", "原黑名单认定部门",
          "shared"),
    _list("watch.key_concern", "重点关注名单", "watch", "泉州市社会信用体系建设领导小组办公室",
          "shared"),
    _list("env.warning", "环保警示企业名单", "watch", "福建省生态环境厅", "shared"),
    _list("tax.a_grade", "纳税信用A级纳税人名单", "red", "国家税务总局", "public"),
    _list("customs.advanced_certified", "海关高级认证企业名单", "red", "海关总署", "public"),
    _list("red.trustworthy", "守信联合激励对象名单（诚信典型“红名单”）", "red",
          "福建省社会信用体系建设领导小组办公室", "public"),
    _list("env.honest", "环保诚信企业名单", "red", "福建省生态环境厅", "public"),
)

COURT = ["court.dishonest_debtor"]
LINKED4 = ["subject", "linked:legal_rep", "linked:principal", "linked:actual_controller",
           "linked:direct_responsible"]
ORG_OF_BOARD = ["subject", "org_of:legal_rep", "org_of:actual_controller", "org_of:director",
                "org_of:supervisor", "org_of:senior_manager"]
RED_ALL = ["red.trustworthy", "tax.a_grade", "customs.advanced_certified", "env.honest"]
WATCH = ["watch.after_black", "watch.key_concern"]
ORG_BLACK = ["court.dishonest_debtor", "tax.major_violation", "procurement.serious_violation",
             "env.bad_enterprise", "transport.fuzhou_road"]
ALL_APPROVAL = ["administrative_license", "government_procurement", "bidding", "fiscal_funds"]

_FJ = "发改财金〔2016〕141号；福建省《关于加快推进失信被执行人信用监督、警示和惩戒机制建设的实施意见》二"
_TAX = "发改财金〔2014〕3062号"
_PROC = "《中华人民共和国政府采购法》第七十七条；财库〔2016〕125号"
_ELEV = "《福建省电梯维保质量安全诚信体系建设实施方案（试行）》三（二）2"
_ENV = "环发〔2013〕150号；《福建省企业环境信用评价实施意见（试行）》五"
_TH = "国发〔2016〕33号；吉政办发〔2017〕4号；通化市守信联合激励和失信联合惩戒实施方案 二（二）"
_FJ_INFO = "《福建省公共信用信息管理暂行办法》"
_QZ = "泉政文〔2018〕51号"
_GREEN = "国发〔2016〕33号；闽政〔2017〕3号（十一）；泉政文〔2018〕51号 二（二）"


def _m(mid: str, name: str, lists: list[str], targets: list[str], scenarios: list[str],
       force: str, effect: str, implementer: str, basis: str, **extra: Any) -> Record:
    return {"id": mid, "name": name, "lists": lists, "targets": targets,
            "scenarios": scenarios, "force": force, "effect": effect,
            "implementer": implementer, "basis": basis, **extra}


MEASURES: tuple[Record, ...] = (
    # 失信被执行人 (court.dishonest_debtor)
    _m("M-GP-1", "限制作为供应商参加政府采购活动", COURT, ["subject"],
       ["government_procurement"], "mandatory", "block", "财政部门", _FJ + "（一）7"),
    _m("M-GP-2", "限制参与政府投资项目或主要使用财政性资金项目", COURT, ["subject"],
       ["fiscal_funds", "bidding"], "mandatory", "block", "发展改革部门", _FJ + "（一）7"),
    _m("M-BID-1", "限制参与工程建设项目招标投标活动", COURT, ["subject"], ["bidding"],
       "mandatory", "block", "发展改革部门、住房城乡建设部门", _FJ + "（一）8"),
    _m("M-FUND-1", "限制申请政府补贴资金和社会保障资金支持", COURT, ["subject"],
       ["fiscal_funds"], "mandatory", "block", "财政部门、人力资源社会保障部门", _FJ + "（二）1"),
    _m("M-FUND-2", "投资、进出口、科技等政策支持审慎性参考", COURT, ORG_OF_BOARD,
       ["fiscal_funds", "administrative_license"], "recommended", "review",
       "发展改革、商务、科技部门", _FJ + "（二）2"),
    _m("M-SOE-1", "限制担任国有独资、国有资本控股公司董事、监事、高级管理人员", COURT, LINKED4,
       ["soe_appointment"], "mandatory", "block", "国有资产监督管理部门", _FJ + "（三）1"),
    _m("M-SOC-1", "限制发起设立社会组织、担任社会组织负责人", COURT, ["subject"],
       ["social_org_registration"], "mandatory", "block", "民政部门", _FJ + "（一）6、（三）4"),
    _m("M-CUS-1", "限制成为海关认证企业", COURT, ["subject"], ["customs_certification"],
       "mandatory", "block", "海关", _FJ + "（四）1"),
    _m("M-CUS-2", "办理通关业务时严密监管，加强单证审核或布控查验", COURT, ["subject"],
       ["customs_clearance"], "mandatory", "review", "海关", _FJ + "（四）1"),
    _m("M-LIC-1", "药品、食品等行业从严审批，限制烟草、消防等特许经营", COURT, ["subject"],
       ["administrative_license"], "mandatory", "review", "市场监管、药品监管、烟草、消防部门",
       _FJ + "（四）2"),
    _m("M-HON-1", "限制参加文明单位、平安先进单位等评选及授予荣誉", COURT, ORG_OF_BOARD,
       ["honors"], "mandatory", "block", "文明办、综治办", _FJ + "（五）1"),
    _m("M-FIN-1", "融资授信从严审核并作相应限制", COURT, ["subject"], ["financing"],
       "recommended", "block", "人民银行、金融监管部门、银行业金融机构", _FJ + "（五）3"),
    _m("M-FIN-2", "授信时查询法定代表人、实际控制人、董监高是否为失信被执行人", COURT,
       ["org_of:legal_rep", "org_of:principal", "org_of:actual_controller", "org_of:director",
        "org_of:supervisor", "org_of:senior_manager"], ["financing"], "recommended", "alert",
       "银行业金融机构", _FJ + "（五）3"),
    _m("M-RE-1", "限制购买或取得房产、土地使用权，限制参与国有产权交易", COURT, LINKED4,
       ["state_asset_transaction"], "mandatory", "block", "自然资源部门、国有资产监督管理部门",
       _FJ + "（六）1"),
    _m("M-CON-1", "限制乘坐飞机、列车软卧、G字头动车组列车，限制住宿星级以上宾馆等高消费",
       COURT, LINKED4, ["high_consumption"], "mandatory", "block",
       "交通运输、铁路、民航、文化和旅游部门", _FJ + "（七）"),
    _m("M-SUP-1", "列为重点监管对象，提高随机抽查的比例和频次", COURT,
       ["subject", "org_of:legal_rep", "org_of:principal", "org_of:actual_controller",
        "org_of:director", "org_of:supervisor", "org_of:senior_manager"], ALL_APPROVAL,
       "mandatory", "alert", "各行政监管部门", _FJ + "（十）"),
    # 重大税收违法失信主体 (tax.major_violation)
    _m("M-TAX-1", "限制参加政府采购活动", ["tax.major_violation"], ["subject"],
       ["government_procurement"], "mandatory", "block", "财政部门", _TAX),
    _m("M-TAX-2", "限制取得政府供应土地，限制参与国有产权交易", ["tax.major_violation"],
       ["subject"], ["state_asset_transaction"], "mandatory", "block", "自然资源部门", _TAX),
    _m("M-TAX-3", "限制获得财政资金支持和政府补贴", ["tax.major_violation"], ["subject"],
       ["fiscal_funds"], "mandatory", "block", "财政部门", _TAX),
    _m("M-TAX-4", "限制担任国有企业法定代表人、董事、监事、高级管理人员", ["tax.major_violation"],
       ["subject", "linked:legal_rep", "linked:direct_responsible"], ["soe_appointment"],
       "mandatory", "block", "国有资产监督管理部门", _TAX),
    _m("M-TAX-5", "海关通关从严审核，提高查验比例", ["tax.major_violation"], ["subject"],
       ["customs_clearance"], "mandatory", "review", "海关", _TAX),
    _m("M-TAX-6", "不得参加评先评优", ["tax.major_violation"], ["subject", "linked:legal_rep"],
       ["honors"], "mandatory", "block", "文明办、有关部门", _TAX),
    _m("M-TAX-7", "限制参与工程建设项目招标投标", ["tax.major_violation"], ["subject"],
       ["bidding"], "recommended", "block", "发展改革部门", _TAX),
    # 政府采购严重违法失信行为记录名单
    _m("M-PROC-1", "禁止参加政府采购活动（一至三年）", ["procurement.serious_violation"],
       ["subject"], ["government_procurement"], "mandatory", "block", "财政部门", _PROC),
    _m("M-PROC-2", "招标投标活动中从严审核或限制", ["procurement.serious_violation"],
       ["subject"], ["bidding"], "recommended", "block", "发展改革部门", _PROC),
    # 电梯维保单位“黑名单”
    _m("M-SSE-1", "许可证换证、增项或升级时严格把关", ["sse.elevator_maintenance"], ["subject"],
       ["administrative_license"], "mandatory", "review", "市场监管部门（特种设备安全监察）",
       _ELEV + "（3）"),
    _m("M-SSE-2", "约谈并加强执法检查", ["sse.elevator_maintenance"],
       ["subject", "linked:legal_rep", "linked:principal"], ["administrative_license", "bidding"],
       "mandatory", "alert", "市场监管部门（特种设备安全监察）", _ELEV + "（2）"),
    # 企业环境信用
    _m("M-ENV-1", "不予安排环保专项资金及清洁生产示范、循环经济试点项目",
       ["env.bad_enterprise"], ["subject"], ["fiscal_funds"], "mandatory", "block",
       "生态环境部门", _ENV + "（五）2"),
    _m("M-ENV-2", "取消评优评先资格，不予授予先进企业或个人荣誉称号", ["env.bad_enterprise"],
       ["subject", "linked:principal"], ["honors"], "mandatory", "block", "生态环境部门",
       _ENV + "（五）3"),
    _m("M-ENV-3", "从严审核环保专项资金、清洁生产示范、循环经济试点项目", ["env.warning"],
       ["subject"], ["fiscal_funds"], "mandatory", "review", "生态环境部门", _ENV + "（四）2"),
    _m("M-ENV-4", "暂停授予环境保护荣誉称号", ["env.warning"], ["subject"], ["honors"],
       "mandatory", "block", "生态环境部门", _ENV + "（四）3"),
    _m("M-ENV-5", "列为环境保护重点监管对象，增加随机抽查和监督性监测频次",
       ["env.bad_enterprise", "env.warning"], ["subject"], ["administrative_license"],
       "mandatory", "alert", "生态环境部门", _ENV + "（五）1"),
    # 道路运输“黑名单”
    _m("M-TR-1", "道路运输经营许可从严审核", ["transport.fuzhou_road"], ["subject"],
       ["administrative_license"], "mandatory", "review", "道路运输管理机构",
       "榕运管〔2017〕243号；发改运行〔2017〕10号"),
    _m("M-TR-2", "评先评优一票否决", ["transport.fuzhou_road"],
       ["subject", "linked:legal_rep"], ["honors"], "mandatory", "block", "交通运输部门",
       "宁德市交通运输局《交通运输行业诚信体系建设实施方案》（四）2"),
    # 通化: measures keep applying while an objection is verified
    _m("M-TH-1", "市场和行业禁入", ["tonghua.serious_dishonest"],
       ["subject", "linked:legal_rep", "linked:principal", "linked:practitioner"],
       ["administrative_license", "bidding", "government_procurement"], "mandatory", "block",
       "各行业主管部门", _TH + "1"),
    _m("M-TH-2", "撤销荣誉称号，取消参加评先评优资格", ["tonghua.serious_dishonest"],
       ["subject", "linked:legal_rep", "linked:principal", "linked:senior_manager",
        "linked:director", "linked:shareholder"], ["honors"], "mandatory", "block",
       "各级文明办、有关部门", _TH + "1"),
    _m("M-TH-3", "严格限制申请财政性资金项目", ["tonghua.serious_dishonest"], ["subject"],
       ["fiscal_funds"], "mandatory", "block", "财政部门", _TH + "1"),
    _m("M-TH-4", "限制乘坐飞机、高等级列车和席次，入住星级以上宾馆等高消费",
       ["tonghua.serious_dishonest"], ["subject"], ["high_consumption"], "recommended", "block",
       "交通运输、文化和旅游部门", _TH + "2"),
    # 福建省公共信用信息管理暂行办法
    _m("M-HON-2", "严重失信的法人：3年内不得参加认定认证和荣誉评选，其法定代表人或负责人不得参加荣誉评选",
       ORG_BLACK, ["subject", "linked:legal_rep", "linked:principal"], ["honors"], "mandatory",
       "block", "县级以上人民政府及有关部门", _FJ_INFO + "第三十六条"),
    _m("M-FUND-3", "政府性资金支持等选择性扶持政策中取消申请资格", ORG_BLACK, ["subject"],
       ["fiscal_funds"], "mandatory", "block", "县级以上人民政府及有关部门",
       _FJ_INFO + "第三十六条"),
    _m("M-CP-1", "严重失信的自然人：3年内不得参加各项荣誉评选", ["credit.person_serious"],
       ["subject"], ["honors"], "mandatory", "block", "县级以上人民政府及有关部门",
       _FJ_INFO + "第三十九条"),
    _m("M-CP-2", "严重失信的自然人：限制担任国有企业董事、监事、高级管理人员",
       ["credit.person_serious"], ["subject"], ["soe_appointment"], "recommended", "block",
       "国有资产监督管理部门", "国发〔2016〕33号（十八）"),
    # 重点关注名单
    _m("M-W-1", "列为重点关注对象，加强日常监管，增加检查频次", WATCH, ["subject"],
       ALL_APPROVAL + ["customs_clearance"], "mandatory", "alert", "各认定部门和实施部门",
       _QZ + " 四（四）；" + _FJ_INFO + "第三十五条"),
    _m("M-W-2", "政府性资金支持等选择性扶持政策中置后安排或减少扶持力度", WATCH, ["subject"],
       ["fiscal_funds"], "recommended", "review", "财政部门", _FJ_INFO + "第三十五条"),
    _m("M-W-3", "1年内不得参加认定认证和荣誉评选", ["watch.key_concern"],
       ["subject", "linked:legal_rep", "linked:principal"], ["honors"], "recommended", "block",
       "县级以上人民政府及有关部门", _FJ_INFO + "第三十五条、第三十八条"),
    # 守信联合激励
    _m("M-R-1", "行政审批“绿色通道”、“容缺受理”", RED_ALL, ["subject"],
       ["administrative_license"], "recommended", "green", "各行政审批部门", _GREEN),
    _m("M-R-2", "政府采购、政府投资工程建设招投标中优先选择", ["red.trustworthy", "tax.a_grade"],
       ["subject"], ["government_procurement", "bidding"], "recommended", "green",
       "财政部门、发展改革部门", "厦自贸委〔2016〕109号 四（一）2"),
    _m("M-R-3", "财政性资金项目安排、招商引资配套优惠政策中优先考虑",
       ["red.trustworthy", "tax.a_grade", "env.honest"], ["subject"], ["fiscal_funds"],
       "recommended", "green", "财政部门、商务部门", "国发〔2016〕33号；闽政〔2017〕3号（十三）"),
    _m("M-R-4", "推荐参加荣誉评选", ["red.trustworthy"], ["subject"], ["honors"],
       "recommended", "green", "县级以上人民政府及有关部门",
       _FJ_INFO + "第三十四条、第三十七条"),
    _m("M-R-5", "通关便利：适用较低查验率，优先办理通关手续", ["customs.advanced_certified"],
       ["subject"], ["customs_clearance"], "mandatory", "green", "海关", "发改财金〔2016〕2190号"),
    _m("M-R-6", "“银税互动”融资授信便利（税易贷、信易贷）", ["tax.a_grade"], ["subject"],
       ["financing"], "recommended", "green", "银行业金融机构",
       "发改财金〔2016〕1467号；厦自贸委〔2016〕109号 四（一）4"),
    _m("M-R-7", "优先安排环保专项资金，企业及其负责人优先参与环保评优评先", ["env.honest"],
       ["subject"], ["fiscal_funds", "honors"], "recommended", "green", "生态环境部门",
       _ENV + "（二）"),
    _m("M-CY-1", "连续三年无不良信用记录：“绿色通道”、“容缺受理”", [], ["subject"],
       ["administrative_license"], "recommended", "green", "各行政审批部门", _GREEN,
       clean_years=3),
)
