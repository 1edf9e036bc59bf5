"""How the entries of each list look: share, subjects, validity, scope, reasons, authorities.

One ``Profile`` per list that gets entries directly (``watch.after_black`` only gets the
derived exit-to-watch entries the build makes). Weights are per mille of all entries; most
black entries are 失信被执行人, as on the real platforms.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import vocabulary as V

COURT_REASONS = (  # 最高人民法院关于公布失信被执行人名单信息的若干规定 第一条
    "有履行能力而拒不履行生效法律文书确定义务",
    "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "违反财产报告制度",
    "违反限制消费令",
    "无正当理由拒不履行执行和解协议",
)


@dataclass(frozen=True, slots=True)
class Profile:
    code: str
    weight: int                        # per mille of entries
    person_share: float                # share of entries whose subject is a person
    reuse: float                       # share of organisation entries on an already known org
    sector: int                        # 行业 sector of new organisations (vocabulary.INDUSTRIES)
    until_null: float                  # share of entries with no valid_until
    years: tuple[int, ...]             # weights of 1, 2, 3 … years of validity
    national: float                    # share of entries with scope national
    authority: str                     # how the listing authority is named (see authority())
    basis: str                         # how the basis document is numbered (see basis())
    reasons: tuple[str, ...]
    persons: tuple[tuple[str, float], ...] = ()  # (role, share) named in org listings
    regions: tuple[int, ...] = ()      # listing regions, when fixed (Fuzhou, 通化)
    own_region: float = 1.0            # share of org entries listed where the org is registered


_FUZHOU = tuple(i for i, r in enumerate(V.REGIONS) if r.city == "350100")

PROFILES: tuple[Profile, ...] = (
    Profile("court.dishonest_debtor", 470, 0.25, 0.25, 0, 0.45, (0, 7, 3), 0.9, "court", "case",
            COURT_REASONS, (("legal_rep", 0.7), ("direct_responsible", 0.2)), own_region=0.8),
    Profile("tax.major_violation", 50, 0.0, 0.15, 0, 0.05, (0, 1, 8, 0, 1), 0.85, "tax", "tax",
            ("虚开增值税专用发票", "偷税（逃避缴纳税款）数额较大", "逃避追缴欠税",
             "骗取出口退税", "虚开普通发票100份以上或者金额40万元以上", "以暴力、威胁方法拒不缴纳税款"),
            (("legal_rep", 0.9), ("direct_responsible", 0.5))),
    Profile("procurement.serious_violation", 35, 0.0, 0.1, 0, 0.0, (3, 3, 4), 0.9, "finance",
            "finance",
            ("提供虚假材料谋取中标、成交", "采取不正当手段诋毁、排挤其他供应商",
             "与采购人、其他供应商或者采购代理机构恶意串通",
             "向采购人、采购代理机构行贿或者提供其他不正当利益",
             "拒绝有关部门监督检查或者提供虚假情况"),
            (("legal_rep", 0.5),), own_region=0.85),
    Profile("sse.elevator_maintenance", 20, 0.0, 0.0, 1, 0.0, (70, 15, 10, 5), 0.3, "market",
            "market",
            ("事故发生后隐瞒不报、谎报或故意破坏事故现场、毁灭有关证据",
             "所维保电梯存在重大事故隐患不按时整改或整改不到位",
             "超越许可范围开展电梯维护保养活动", "将承接的维保业务进行转包或分包",
             "拒不执行安全监察指令，逾期不履行行政处罚",
             "拆除安全保护装置或人为短接安全控制装置、安全回路", "一年内发生死亡责任事故"),
            (("principal", 0.4),)),
    Profile("env.bad_enterprise", 20, 0.0, 0.0, 3, 0.0, (8, 2), 0.4, "env", "env",
            ("企业环境信用评价为环保不良企业（黑牌）",), (("legal_rep", 0.3),)),
    Profile("transport.fuzhou_road", 15, 0.1, 0.0, 2, 0.1, (4, 3, 3), 0.0, "transport",
            "transport",
            ("未取得道路运输经营许可擅自从事道路运输经营", "发生重大及以上道路运输安全责任事故",
             "非法改装营运车辆且拒不整改", "一年内累计三次以上超限超载运输"),
            (("legal_rep", 0.6), ("practitioner", 0.1)), _FUZHOU),
    Profile("tonghua.serious_dishonest", 15, 0.2, 0.1, 0, 0.2, (2, 2, 2, 1, 1), 0.6, "tonghua",
            "tonghua",
            ("严重危害人民群众身体健康和生命安全的行为",
             "严重破坏市场公平竞争秩序和社会正常秩序的行为",
             "有履行能力但拒不履行、逃避执行"),
            (("legal_rep", 0.6), ("practitioner", 0.2)), V.TONGHUA),
    Profile("credit.person_serious", 25, 1.0, 0.0, 0, 0.0, (0, 0, 1), 0.2, "credit", "credit",
            ("经公共信用信息综合评价认定为严重失信",)),
    Profile("watch.key_concern", 60, 0.15, 0.3, 0, 0.1, (5, 3, 2), 0.3, "dept", "credit",
            ("在重点领域发生较重失信行为", "多次发生轻微失信行为，尚未达到“黑名单”认定标准"),
            (("legal_rep", 0.3),), own_region=0.9),
    Profile("env.warning", 20, 0.0, 0.0, 3, 0.0, (1,), 0.3, "env", "env",
            ("企业环境信用评价为环保警示企业（黄牌）",)),
    Profile("tax.a_grade", 150, 0.0, 0.35, 0, 0.0, (1,), 0.9, "tax", "tax_a",
            ("纳税信用评价为A级",)),
    Profile("customs.advanced_certified", 20, 0.0, 0.5, 0, 0.4, (0, 0, 1, 0, 1), 0.95,
            "customs", "aeo", ("经海关认证为高级认证企业（AEO）",)),
    Profile("red.trustworthy", 70, 0.3, 0.4, 0, 0.1, (3, 4, 3), 0.5, "credit", "credit",
            ("信用状况良好的行政相对人", "诚信道德模范", "优秀青年志愿者",
             "行业协会商会推荐的诚信会员", "新闻媒体挖掘的诚信主体"), own_region=0.95),
    Profile("env.honest", 30, 0.0, 0.0, 3, 0.0, (1,), 0.4, "env", "env",
            ("企业环境信用评价为环保诚信企业（绿牌）",)),
)

_DEPTS = ("市场监督管理局", "社会信用体系建设领导小组办公室", "住房和城乡建设局", "交通运输局",
          "人力资源和社会保障局")
_TONGHUA = ("通化市市场监督管理局", "通化市住房和城乡建设局", "通化市人力资源和社会保障局",
            "通化市中级人民法院")


def authority(kind: str, r: V.Region, city_place: str, pick: int) -> str:
    """The department that lists an entry of region ``r`` (``pick`` varies the choice)."""
    province = r.code == "350000"
    if kind == "court":
        return r.court
    if kind == "tax":
        return f"国家税务总局{r.place}税务局"
    if kind == "finance":
        return "福建省财政厅" if province else f"{r.place}财政局"
    if kind == "market":
        return "福建省市场监督管理局" if province else f"{city_place}市场监督管理局"
    if kind == "env":
        return "福建省生态环境厅" if province else f"{city_place}生态环境局"
    if kind == "transport":
        return "福州市道路运输管理处"
    if kind == "tonghua":
        return _TONGHUA[pick % len(_TONGHUA)]
    if kind == "credit":
        return "福建省公共信用信息中心" if province else f"{city_place}社会信用体系建设领导小组办公室"
    if kind == "customs":
        return r.customs
    return ("福建省" if province else city_place) + _DEPTS[pick % len(_DEPTS)]


def basis(kind: str, r: V.Region, year: int, number: int) -> str:
    """A plausible basis document number for a listing in region ``r`` in ``year``."""
    if kind == "case":
        lag = number % 3
        kind_char = "执恢" if number % 10 == 0 else "执"
        return f"（{year - lag}）{r.court_code}{kind_char}{number}号"
    if kind == "tax":
        return f"{r.abbr}税稽罚〔{year}〕{number % 400 + 1}号"
    if kind == "finance":
        return f"{r.abbr}财采罚〔{year}〕{number % 200 + 1}号"
    if kind == "market":
        return f"{r.abbr}市监特处〔{year}〕{number % 300 + 1}号"
    if kind == "env":
        return f"{r.abbr}环信评〔{year}〕{number % 50 + 1}号"
    if kind == "transport":
        return f"榕运管罚〔{year}〕{number % 800 + 1}号"
    if kind == "tonghua":
        return f"通信用办〔{year}〕{number % 90 + 1}号"
    if kind == "tax_a":
        return f"{year - 1}年度纳税信用评价结果"
    if kind == "aeo":
        return f"海关高级认证企业证书 AEOCN{r.code[:4]}{number:06d}"
    return f"{r.abbr}信用办〔{year}〕{number % 150 + 1}号"
