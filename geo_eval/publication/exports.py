"""Tables made from a year's objections: the corrections table and the objection register.

:func:`corrections_table` is ``corrections.csv`` (:data:`~geo_eval.inputs.corrections.CORRECTION_COLUMNS`):
one row per accepted objection, in objection order; :func:`register_table` is 异议处理登记表, every
objection with its decision, Chinese headers, Beijing times.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from geo_eval.inputs.corrections import CORRECTABLE_FIELDS, CORRECTION_COLUMNS
from geo_eval.publication.objections import OBJECTION_STATUS_LABELS, Objection
from geo_eval.report.timefmt import beijing_time


def correction_id(objection: Objection) -> str:
    """The correction's id: the year and the objection's number (``2025-C0007``)."""
    return f"{objection.year}-C{objection.id:04d}"


def corrections_table(objections: Sequence[Objection]) -> pd.DataFrame:
    """The accepted objections as corrections (a parcel field names its parcel; an enterprise field its
    enterprise), in objection order; ``decided_at`` is UTC ISO text, as the store keeps it."""
    rows = []
    for o in sorted((o for o in objections if o.status == "accepted"), key=lambda o: o.id):
        parcel_field = CORRECTABLE_FIELDS[o.field].table == "parcels"
        reason = o.decision_reason or o.reason
        rows.append(
            {
                "correction_id": correction_id(o),
                "uscc": "" if parcel_field else o.uscc,
                "parcel_id": o.parcel_id if parcel_field else "",
                "field": o.field,
                "run_value": o.run_value,
                "corrected_value": o.corrected_value,
                "reason": reason,
                "objection_id": str(o.id),
                "decided_by": o.decided_by,
                "decided_at": o.decided_at,
            }
        )
    return pd.DataFrame(rows, columns=list(CORRECTION_COLUMNS), dtype=object)


REGISTER_HEADERS: dict[str, str] = {
    "id": "异议编号",
    "park": "园区",
    "enterprise": "企业名称",
    "uscc": "统一社会信用代码",
    "parcel_id": "宗地代码",
    "field_label": "异议事项",
    "unit": "单位",
    "run_value": "公示值",
    "claimed_value": "主张值",
    "reason": "异议理由",
    "files": "证明材料",
    "created_by": "登记人",
    "created_at_label": "登记时间",
    "status_label": "处理结果",
    "corrected_value": "更正值",
    "decision_reason": "处理意见",
    "decided_by": "处理人",
    "decided_at_label": "处理时间",
    "run_id": "评价批次",
}
"""The columns of 异议处理登记表, in order, with their Chinese headers."""


def register_table(objections: Sequence[Objection]) -> pd.DataFrame:
    """异议处理登记表: every objection (in objection order) with its decision; Chinese headers."""
    rows = []
    for o in sorted(objections, key=lambda o: o.id):
        f = CORRECTABLE_FIELDS.get(o.field)
        rows.append(
            {
                "id": o.id,
                "park": o.park,
                "enterprise": o.enterprise,
                "uscc": o.uscc,
                "parcel_id": o.parcel_id,
                "field_label": f.label if f else o.field,
                "unit": f.unit if f else "",
                "run_value": o.run_value,
                "claimed_value": o.claimed_value,
                "reason": o.reason,
                "files": "、".join(e.name for e in o.files),
                "created_by": o.created_by,
                "created_at_label": beijing_time(o.created_at),
                "status_label": OBJECTION_STATUS_LABELS[o.status],
                "corrected_value": o.corrected_value,
                "decision_reason": o.decision_reason,
                "decided_by": o.decided_by,
                "decided_at_label": beijing_time(o.decided_at),
                "run_id": o.run_id,
            }
        )
    table = pd.DataFrame(rows, columns=list(REGISTER_HEADERS))
    table["id"] = table["id"].astype("int64")
    return table.rename(columns=REGISTER_HEADERS)
