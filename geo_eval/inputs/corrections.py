"""Corrections (更正): decided objections applied on top of a year's inputs, never editing them.

A corrections table (``corrections.csv``, UTF-8 with BOM) has exactly the columns
:data:`CORRECTION_COLUMNS`. ``field`` is a canonical input field of the data contract
(:data:`CORRECTABLE_FIELDS`); ``uscc`` names the enterprise row it corrects (enterprise fields) and
``parcel_id`` the parcel row (parcel fields). The service writes one from the accepted objections of a
year (``geo-eval objections export YEAR``); a person may also write one by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CORRECTION_COLUMNS: tuple[str, ...] = (
    "correction_id",
    "uscc",
    "parcel_id",
    "field",
    "run_value",
    "corrected_value",
    "reason",
    "objection_id",
    "decided_by",
    "decided_at",
)
"""The columns of ``corrections.csv``, in this order (a public interface: keep them exactly)."""

CORRECTIONS_FILE = "corrections.csv"


@dataclass(frozen=True)
class CorrectableField:
    """An input field an objection may name and a correction may change."""

    name: str
    """The canonical field name (data contract)."""
    label: str
    """The figure as an objection names it (异议事项)."""
    table: Literal["enterprises", "parcels"]
    """Which input table holds it: enterprise rows are keyed by ``uscc``, parcel rows by ``parcel_id``."""
    kind: Literal["number", "text", "code"]
    unit: str = ""


CORRECTABLE_FIELDS: dict[str, CorrectableField] = {
    f.name: f
    for f in (
        CorrectableField("registered_area_m2", "用地面积", "parcels", "number", "平方米"),
        CorrectableField("tax", "税收", "enterprises", "number", "万元"),
        CorrectableField("sales", "销售收入", "enterprises", "number", "万元"),
        CorrectableField("energy_tce", "能耗", "enterprises", "number", "吨标准煤"),
        CorrectableField("emission_t", "排放", "enterprises", "number", "吨"),
        CorrectableField("employees", "职工人数", "enterprises", "number", "人"),
        CorrectableField("rnd", "研发经费", "enterprises", "number", "万元"),
        CorrectableField("exempt_reason", "T 类/豁免理由", "enterprises", "text"),
        CorrectableField("holder_uscc", "宗地权利人", "parcels", "code"),
        CorrectableField("value_added", "工业增加值", "enterprises", "number", "万元"),
        CorrectableField("main_revenue", "主营业务收入", "enterprises", "number", "万元"),
        CorrectableField("electricity_10k_kwh", "用电量", "enterprises", "number", "万千瓦时"),
    )
}
"""The fields objections and corrections may name, by canonical name (objection label in Chinese)."""
