"""Objections (异议) to a run's figures: what one holds, how its values are checked, and what it objects to.

An objection belongs to an enterprise (``uscc``) or a parcel (``parcel_id``) and names one figure, a field
of :data:`~geo_eval.inputs.corrections.CORRECTABLE_FIELDS`, with the value in the run, the value claimed
and the reason. :func:`find_subject` reads the run's tables (pure: DataFrames in, values out) for the
row, its park and its value; :func:`clean_value` checks a claimed or corrected value; evidence files are
checked by :func:`check_evidence`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from geo_eval.inputs.corrections import CORRECTABLE_FIELDS, CorrectableField
from geo_eval.inputs.uscc import uscc_check_char
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage.common import check_comment_characters, is_blank
from geo_eval.storage.errors import InvalidValueError, NotFoundError

ObjectionStatus = Literal["open", "accepted", "rejected"]
OBJECTION_STATUSES: tuple[ObjectionStatus, ...] = ("open", "accepted", "rejected")
OBJECTION_STATUS_LABELS: dict[str, str] = {"open": "待处理", "accepted": "采纳", "rejected": "不采纳"}
DECISIONS = ("accepted", "rejected")

MAX_REASON = 2000
MAX_VALUE = 200
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_EVIDENCE_FILES = 5
EVIDENCE_TYPES: dict[str, tuple[bytes, str]] = {
    "application/pdf": (b"%PDF-", ".pdf"),
    "image/png": (b"\x89PNG\r\n\x1a\n", ".png"),
    "image/jpeg": (b"\xff\xd8\xff", ".jpg"),
}
"""Evidence files accepted: content type → (the bytes the file starts with, the file suffix)."""


@dataclass(frozen=True)
class EvidenceFile:
    """One evidence file stored with an objection (its bytes are read separately)."""

    objection_id: int
    file_no: int
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: str

    def public(self) -> dict[str, Any]:
        return asdict(self) | {
            "uploaded_at_label": beijing_time(self.uploaded_at),
            "url": f"/api/objections/{self.objection_id}/evidence/{self.file_no}",
        }


@dataclass(frozen=True)
class Objection:
    """One objection and its decision; ``version`` counts its changes (compare-and-set, as reviews)."""

    id: int
    year: int
    run_id: str
    park: str
    uscc: str
    parcel_id: str
    enterprise: str
    field: str
    run_value: str
    claimed_value: str
    reason: str
    status: ObjectionStatus = "open"
    corrected_value: str = ""
    decision_reason: str = ""
    version: int = 1
    created_by: str = ""
    created_at: str = ""
    decided_by: str = ""
    decided_at: str = ""
    files: tuple[EvidenceFile, ...] = ()

    def state(self) -> dict[str, Any]:
        """The objection as the audit trail records it (before and after a change)."""
        keys = ("status", "claimed_value", "corrected_value", "decision_reason", "version", "decided_by", "decided_at")
        return {k: getattr(self, k) for k in keys}

    def public(self) -> dict[str, Any]:
        """Every field, with Chinese labels and Beijing times for pages."""
        f = CORRECTABLE_FIELDS.get(self.field)
        data = {k: v for k, v in asdict(self).items() if k != "files"}
        return data | {
            "field_label": f.label if f else self.field,
            "unit": f.unit if f else "",
            "status_label": OBJECTION_STATUS_LABELS[self.status],
            "created_at_label": beijing_time(self.created_at),
            "decided_at_label": beijing_time(self.decided_at),
            "files": [e.public() for e in self.files],
        }


@dataclass(frozen=True)
class Subject:
    """What an objection is about, as the run holds it."""

    park: str
    uscc: str
    parcel_id: str
    enterprise: str
    run_value: str


def correctable(field: str) -> CorrectableField:
    """The field an objection names (422 with the list when unknown)."""
    if field not in CORRECTABLE_FIELDS:
        names = "、".join(f"{f.name}（{f.label}）" for f in CORRECTABLE_FIELDS.values())
        raise InvalidValueError(f"异议事项 {field!r} 无效；可用：{names}")
    return CORRECTABLE_FIELDS[field]


def format_value(value: object) -> str:
    """A figure of the run as text: numbers without trailing zeros, missing values as "".

    >>> format_value(1234.5000), format_value(12.0), format_value(float("nan")), format_value(" 无 ")
    ('1234.5', '12', '', '无')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        text = f"{float(value):.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value).strip()


def clean_value(field: str, text: object, what: str) -> str:
    """A claimed or corrected value of ``field``, checked and written as the corrections table holds it.

    >>> clean_value("tax", " 1,234.50 ", "主张值")
    '1234.5'
    >>> clean_value("tax", "-3", "主张值")
    Traceback (most recent call last):
    ...
    geo_eval.storage.errors.InvalidValueError: 主张值“-3”无效：税收须为不小于 0 的数（万元）
    """
    f = correctable(field)
    raw = "" if text is None else str(text).strip()
    if len(raw) > MAX_VALUE:
        raise InvalidValueError(f"{what}不能超过 {MAX_VALUE} 个字符")
    check_comment_characters(raw)
    if f.kind == "number":
        return _number(f, raw, what)
    if f.kind == "code":
        return _uscc(f, raw, what)
    return raw


def _number(f: CorrectableField, raw: str, what: str) -> str:
    try:
        value = float(raw.replace(",", "").replace("，", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidValueError(f"{what}“{raw}”无效：{f.label}须为不小于 0 的数（{f.unit}）")
    return format_value(value)


def _uscc(f: CorrectableField, raw: str, what: str) -> str:
    code = raw.upper()
    if len(code) != 18 or uscc_check_char(code[:17]) != code[17]:
        raise InvalidValueError(f"{what}“{raw}”不是有效的统一社会信用代码（18 位，末位校验码须正确）")
    return code


def clean_reason(text: object, what: str, *, required: bool = True) -> str:
    """A reason (trimmed); required unless ``required`` is false."""
    reason = ("" if text is None else str(text)).replace("\r\n", "\n").strip()
    if required and is_blank(reason):
        raise InvalidValueError(f"须填写{what}")
    if len(reason) > MAX_REASON:
        raise InvalidValueError(f"{what}不能超过 {MAX_REASON} 个字符")
    check_comment_characters(reason)
    return reason


def find_subject(enterprises: pd.DataFrame, parcels: pd.DataFrame, *, uscc: str, parcel_id: str, field: str) -> Subject:
    """The row an objection to ``field`` names in a run (its ``enterprises`` and ``parcels`` tables), its
    park and the value the run holds.

    A parcel field needs the parcel: given as ``parcel_id``, or, with only ``uscc``, the single parcel the
    enterprise holds (several: the message lists them). An enterprise field needs ``uscc``.
    """
    f = correctable(field)
    uscc, parcel_id = (uscc or "").strip().upper(), (parcel_id or "").strip()
    if f.table == "enterprises":
        if not uscc:
            raise InvalidValueError(f"{f.label}是企业的数据，须指明企业的统一社会信用代码（uscc）")
        row = _enterprise(enterprises, uscc)
        return Subject(_text(row.get("park")), uscc, "", _text(row.get("name")), format_value(row.get(f.name)))
    parcel = _parcel(parcels, parcel_id, uscc, f)
    holder = _text(parcel.get("holder_uscc"))
    name = _text(parcel.get("holder_name"))
    if uscc and uscc in set(enterprises["uscc"]):
        name = _text(_enterprise(enterprises, uscc).get("name"))
    return Subject(
        _text(parcel.get("park")), uscc or holder, _text(parcel["parcel_id"]), name, format_value(parcel.get(f.name))
    )


def _enterprise(enterprises: pd.DataFrame, uscc: str) -> pd.Series:
    found = enterprises.loc[enterprises["uscc"] == uscc]
    if found.empty:
        raise NotFoundError(f"本批次没有统一社会信用代码为 {uscc} 的企业")
    return found.iloc[0]


def _parcel(parcels: pd.DataFrame, parcel_id: str, uscc: str, f: CorrectableField) -> pd.Series:
    if parcel_id:
        found = parcels.loc[parcels["parcel_id"] == parcel_id]
        if found.empty:
            raise NotFoundError(f"本批次没有宗地代码为 {parcel_id} 的宗地")
        row = found.iloc[0]
        if uscc and uscc not in (_text(row.get("holder_uscc")), *_users(row)):
            raise InvalidValueError(f"宗地 {parcel_id} 不是企业 {uscc} 的宗地（不是其权利人或使用人）")
        return row
    if not uscc:
        raise InvalidValueError(f"{f.label}是宗地的数据，须指明宗地代码（parcel_id）")
    held = parcels.loc[parcels["holder_uscc"] == uscc]
    if len(held) != 1:
        codes = "、".join(held["parcel_id"].astype(str).head(20)) or "无"
        raise InvalidValueError(
            f"企业 {uscc} 持有 {len(held)} 宗宗地（{codes}），{f.label}异议须指明宗地代码（parcel_id）"
        )
    return held.iloc[0]


def _users(row: pd.Series) -> tuple[str, ...]:
    return tuple(u for u in _text(row.get("users")).split(";") if u)


def _text(value: object) -> str:
    """A text cell of a run's table ("" when missing: a park left empty is not the park "nan")."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def check_evidence(name: str, data: bytes, count: int) -> tuple[str, str]:
    """An evidence file's content type (from its first bytes, not its name) and a safe file name.

    ``count``: files the objection holds already.
    """
    if count >= MAX_EVIDENCE_FILES:
        raise InvalidValueError(f"每条异议最多上传 {MAX_EVIDENCE_FILES} 个证明材料")
    if not data:
        raise InvalidValueError("证明材料文件为空")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InvalidValueError(
            f"证明材料不能超过 {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB（该文件 {len(data) / 1048576:.1f} MB）"
        )
    for kind, (magic, suffix) in EVIDENCE_TYPES.items():
        if data.startswith(magic):
            return kind, safe_file_name(name, suffix)
    raise InvalidValueError(f"证明材料“{name}”不是 PDF、PNG 或 JPEG 文件（只接受这三种格式）")


def safe_file_name(name: str, suffix: str) -> str:
    """A file name without path, control or quoting characters, ending in ``suffix``.

    >>> safe_file_name('../../证明"材料".PDF', ".pdf"), safe_file_name("", ".png")
    ('证明_材料_.pdf', '证明材料.png')
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem = base[: -len(suffix)] if base.lower().endswith(suffix) else base.rsplit(".", 1)[0] if "." in base else base
    clean = "".join("_" if (not c.isprintable() or c in '"<>:|?*;') else c for c in stem).strip(" .")[:80]
    return (clean or "证明材料") + suffix
