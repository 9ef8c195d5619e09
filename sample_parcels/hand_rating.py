"""The sample's expected land, scores, classes and ranks, worked out by hand (for the golden files).

This module imports nothing from geo_eval on purpose: it is the independent reading of the rules that
the sample's golden files (``expected_scores.csv``, ``expected_benchmarks.csv`` and the ``low_tax_per_mu``,
``grade_d``, ``renewal_candidate`` and ``renewal_block`` rows of ``expected_flags.csv``) are computed from, so that a test comparing them with a
geo-eval run can fail. The formulas are written out from /work/shared/domain.md (§3 scoring, §4 land)
and the numbers of the default scheme ``geo_eval/rating/schemes/lianyungang.toml``, copied below by hand:

- evaluated land (用地面积) of an enterprise = area of the parcels it holds − land it leases out + land it
  leases in; a factory-floor lease counts as floor area ÷ the parcel's plot ratio (总建筑面积 ÷ parcel area);
  a parcel's area is the area of its polygon in the EPSG:4528 plane (a self-crossing ring is measured after
  repair); 1 亩 = 2000/3 m²;
- T (不参评, not rated): a 不参评原因 given; a utility (GB/T 4754 divisions 44, 45, 46); production started
  less than 2 years before 31 December of the year (a 投产日期 later than 31 December two years before);
  no evaluated land; 规下 with less than 3 亩 (outside both groups);
- groups: 规上 (``above_scale``) and 规下 with at least 3 亩 (``below_scale``), each ranked per county;
- indicators (value = numerator ÷ denominator; 0 when the numerator is 0; missing when the numerator is
  blank or the denominator blank or not positive), with weights: 亩均税收 tax/land 40, 亩均销售收入
  sales/land 20, 单位能耗税收 tax/energy 10, 单位排放税收 tax/emission 10, 全员劳动生产率 value added/employees
  10, 研发经费支出占比 R&D/main revenue 10;
- benchmark = 2 × the county's previous-year aggregate mean in the group (Σ numerator ÷ Σ denominator over
  last year's rated enterprises with a value); without a previous year, 2 × this year's aggregate mean;
- item score = weight × value ÷ benchmark, at least 0, no cap; a missing 单位排放税收 or 研发经费支出占比 scores
  the average item score of the enterprise's county and group (黄岩 rule), any other missing item 0;
- score = Σ items + min(加分, 10) − min(减分, 20), rounded to 2 decimals;
- classes per county and group by position p of n (score high first, then USCC): A for p ≤ ⌊0.20 n⌋,
  B for p ≤ ⌊0.60 n⌋, C for p ≤ ⌊0.95 n⌋, else D; equal scores across a cut all take the better class,
  except that a tie reaching a D position is all D; a safety or environment veto (安全生产否决, 环保否决)
  makes the class D; rank = 1 + the number of better scores (1, 2, 2, 4);
- a parcel's 亩均税收 = Σ over its users of (the user's tax × the share of the user's evaluated land lying on
  this parcel) ÷ the parcel's area in 亩; it is low-efficiency (``low_tax_per_mu``) below 20 % of the county's
  aggregate 亩均税收 of the rated enterprises (all groups), and ``grade_d`` when the user with most land on
  it (then the smaller USCC) is class D;
- 退二优二 candidates (a parcel with any idle, suspected-idle or low-efficiency flag and no government-caused
  exemption) within 15 m of each other form a group; a group of at least 50 亩 is a 连片改造区块.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

MU_M2 = 2000 / 3
INDICATORS = {  # key: (numerator, denominator, weight)
    "tax_per_mu": ("tax", "land_mu", 40),
    "revenue_per_mu": ("sales", "land_mu", 20),
    "tax_per_energy": ("tax", "energy", 10),
    "tax_per_emission": ("tax", "emission", 10),
    "labour_productivity": ("value_added", "employees", 10),
    "rnd_intensity": ("rnd", "main_revenue", 10),
}
GROUP_MEAN_WHEN_MISSING = ("tax_per_emission", "rnd_intensity")
K = 2.0
SHARES = (("A", 0.20), ("B", 0.60), ("C", 0.95))
BONUS_MAX, PENALTY_MAX = 10.0, 20.0
BELOW_SCALE_MIN_MU = 3.0
UTILITY_DIVISIONS = ("44", "45", "46")
LOW_TAX_SHARE = 0.20


@dataclass
class LandUse:
    """One parcel of one year as the files give it."""

    code: str
    area_m2: float
    holder: str | None
    floor_m2: float | None
    county: str


@dataclass
class Lease:
    lessee: str
    parcel: str
    land_m2: float | None
    floor_m2: float | None


@dataclass
class Firm:
    """One row of the enterprise table (figures as written: ``None`` is a blank cell)."""

    uscc: str
    name: str
    county: str
    industry_code: str
    above_scale: bool
    production_start: dt.date | None
    exempt_reason: str
    figures: dict[str, float | None]
    veto: bool
    bonus: float
    penalty: float


@dataclass
class Result:
    """What the hand evaluation gives for one enterprise."""

    uscc: str
    land_m2: float = 0.0
    group: str = ""  # "" for T
    t_reason: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    items: dict[str, float] = field(default_factory=dict)
    raw_score: float = math.nan
    score: float = math.nan
    grade: str = "T"
    rank: int | None = None
    rank_of: int | None = None

    @property
    def land_mu(self) -> float:
        return self.land_m2 / MU_M2


@dataclass
class Year:
    """The hand evaluation of one year."""

    results: dict[str, Result]
    benchmarks: dict[tuple[str, str, str], float]  # (county, group, indicator) → benchmark
    allocation: list[tuple[str, str, float]]  # (parcel, user, land m²) with land > 0
    parcel_tax_per_mu: dict[str, float]
    county_tax_per_mu: dict[str, float]


def allocate(parcels: list[LandUse], leases: list[Lease]) -> list[tuple[str, str, float]]:
    """Who uses how much of each parcel: the holder keeps what it does not lease out."""
    by_code = {p.code: p for p in parcels}
    out = []
    leased: dict[str, float] = {}
    for ls in leases:
        p = by_code[ls.parcel]
        if ls.land_m2:
            land = ls.land_m2
        else:
            assert ls.floor_m2 and p.floor_m2, ls  # every floor lease of the sample is on a parcel with floors
            land = ls.floor_m2 / (p.floor_m2 / p.area_m2)
        leased[p.code] = leased.get(p.code, 0.0) + land
        out.append((p.code, ls.lessee, land))
    for p in parcels:
        assert leased.get(p.code, 0.0) <= p.area_m2, p.code  # no parcel of the sample is over-leased
        if p.holder is not None and p.area_m2 - leased.get(p.code, 0.0) > 0:
            out.append((p.code, p.holder, p.area_m2 - leased.get(p.code, 0.0)))
    return out


def t_reason(f: Firm, land_m2: float, year: int) -> str:
    """Why ``f`` is not rated ("" when it is)."""
    if f.exempt_reason:
        return "不参评原因"
    if f.industry_code[1:3] in UTILITY_DIVISIONS:
        return "公用事业"
    if f.production_start is not None and f.production_start > dt.date(year - 2, 12, 31):
        return "投产不满2年"
    if land_m2 <= 0:
        return "无评价用地"
    if not f.above_scale and land_m2 / MU_M2 < BELOW_SCALE_MIN_MU:
        return "规下不足3亩"
    return ""


def value(num: float | None, den: float | None) -> float | None:
    if num is None:
        return None
    if num == 0:
        return 0.0
    if den is None or den <= 0:
        return None
    return num / den


def aggregate(rows: list[tuple[float | None, float | None]]) -> float:
    """Σ numerator ÷ Σ denominator over the rows where the indicator has a value."""
    kept = [(n, d) for n, d in rows if value(n, d) is not None]
    num = sum(n for n, _ in kept)  # type: ignore[misc]
    den = sum(d or 0.0 for _, d in kept)
    return num / den if den > 0 else math.nan


def figure(f: Firm, r: Result, name: str) -> float | None:
    return r.land_mu if name == "land_mu" else f.figures[name]


def evaluate(
    year: int,
    parcels: list[LandUse],
    leases: list[Lease],
    firms: list[Firm],
    previous: tuple[dict[str, Firm], Year] | None = None,
) -> Year:
    """Land, T class, benchmarks, scores, classes and ranks of one year, as the module docstring says."""
    known = {f.uscc: f for f in firms}
    alloc = allocate(parcels, leases)
    results = {f.uscc: Result(f.uscc) for f in firms}
    for _, user, land in alloc:
        if user in results:
            results[user].land_m2 += land
    for f in firms:
        r = results[f.uscc]
        r.t_reason = t_reason(f, r.land_m2, year)
        if not r.t_reason:
            r.group = "above_scale" if f.above_scale else "below_scale"
            for key, (num, den, _) in INDICATORS.items():
                r.values[key] = value(figure(f, r, num), figure(f, r, den))
    rated = [f for f in firms if results[f.uscc].group]
    cells = sorted({(f.county, results[f.uscc].group) for f in rated})
    benchmarks = {}
    for county, group in cells:
        for key, (num, den, _) in INDICATORS.items():
            mean = math.nan
            if previous is not None:
                prev_firms, prev = previous
                mean = aggregate(
                    [
                        (figure(prev_firms[u], r, num), figure(prev_firms[u], r, den))
                        for u, r in prev.results.items()
                        if r.group == group and prev_firms[u].county == county
                    ]
                )
            if not mean > 0:
                here = [f for f in rated if f.county == county and results[f.uscc].group == group]
                mean = aggregate([(figure(f, results[f.uscc], num), figure(f, results[f.uscc], den)) for f in here])
            benchmarks[(county, group, key)] = K * mean
    for county, group in cells:
        cell = [f for f in rated if f.county == county and results[f.uscc].group == group]
        _score_cell(cell, results, {k: benchmarks[(county, group, k)] for k in INDICATORS})
        _grade_cell(cell, results)
    for f in rated:  # vetoes after the classes: the ranking stays
        if f.veto:
            results[f.uscc].grade = "D"
    return Year(results, benchmarks, alloc, *_parcel_tax(parcels, alloc, known, results))


def _score_cell(cell: list[Firm], results: dict[str, Result], bench: dict[str, float]) -> None:
    for key, (_, _, weight) in INDICATORS.items():
        items = {}
        for f in cell:
            v = results[f.uscc].values[key]
            items[f.uscc] = None if v is None else max(weight * v / bench[key], 0.0)
        given = [x for x in items.values() if x is not None]
        fill = sum(given) / len(given) if key in GROUP_MEAN_WHEN_MISSING and given else 0.0
        for u, x in items.items():
            results[u].items[key] = fill if x is None else x
    for f in cell:
        r = results[f.uscc]
        r.raw_score = sum(r.items.values()) + min(max(f.bonus, 0.0), BONUS_MAX) - min(max(f.penalty, 0.0), PENALTY_MAX)
        r.score = round(r.raw_score, 2)


def _grade_cell(cell: list[Firm], results: dict[str, Result]) -> None:
    ordered = sorted(cell, key=lambda f: (-results[f.uscc].score, f.uscc))
    n = len(ordered)
    cuts = [(g, math.floor(n * share + 1e-9)) for g, share in SHARES]

    def by_position(p: int) -> str:
        return next((g for g, c in cuts if p <= c), "D")

    scores = [results[f.uscc].score for f in ordered]
    for i, f in enumerate(ordered):
        tied = [p + 1 for p, s in enumerate(scores) if s == scores[i]]
        classes = [by_position(p) for p in tied]
        r = results[f.uscc]
        r.grade = "D" if "D" in classes else min(classes)  # "A" < "B" < "C": the better class
        r.rank = 1 + sum(1 for s in scores if s > r.score)
        r.rank_of = n


def _parcel_tax(
    parcels: list[LandUse], alloc: list[tuple[str, str, float]], known: dict[str, Firm], results: dict[str, Result]
) -> tuple[dict[str, float], dict[str, float]]:
    """Each used parcel's 亩均税收 (users' tax shared by land) and each county's aggregate of rated firms."""
    area = {p.code: p.area_m2 for p in parcels}
    tax: dict[str, float] = {}
    for code, user, land in alloc:
        if user in known and results[user].land_m2 > 0:
            t = known[user].figures["tax"] or 0.0
            tax[code] = tax.get(code, 0.0) + t * land / results[user].land_m2
    per_parcel = {code: t / (area[code] / MU_M2) for code, t in tax.items()}
    county: dict[str, float] = {}
    for c in sorted({f.county for f in known.values()}):
        rated = [f for f in known.values() if f.county == c and results[f.uscc].group]
        total_tax = sum(f.figures["tax"] or 0.0 for f in rated)
        county[c] = total_tax / (sum(results[f.uscc].land_m2 for f in rated) / MU_M2)
    return per_parcel, county


def main_user(alloc: list[tuple[str, str, float]], code: str) -> str | None:
    """The user with most land on the parcel, then the smaller USCC."""
    users = sorted((-land, user) for c, user, land in alloc if c == code)
    return users[0][1] if users else None


BLOCK_TOLERANCE_M = 15.0
BLOCK_MIN_MU = 50.0


def renewal_groups(geoms: dict[str, object], distance) -> list[list[str]]:
    """The 退二优二 candidates grouped for 集中连片改造: two candidates lying within 15 m of each other (a
    narrow road between them) are in one group, and groups are the connected sets of such pairs; each
    group's parcel codes sorted, groups sorted by their first code. ``distance(a, b)`` measures two
    geometries."""
    codes = sorted(geoms)
    parent = {c: c for c in codes}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            if distance(geoms[a], geoms[b]) <= BLOCK_TOLERANCE_M:
                parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for c in codes:
        groups.setdefault(root(c), []).append(c)
    return sorted(groups.values())
