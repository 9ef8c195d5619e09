"""Corrections (更正): decided objections applied on top of a year's inputs, never editing them.

A corrections table (``corrections.csv``, UTF-8 with BOM) has exactly the columns
:data:`CORRECTION_COLUMNS`. ``field`` is a canonical input field of the data contract
(:data:`CORRECTABLE_FIELDS`); ``uscc`` names the enterprise row it corrects (enterprise fields) and
``parcel_id`` the parcel row (parcel fields). The service writes one from the accepted objections of a
year (``geo-eval objections export YEAR``); a person may also write one by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_eval.errors import DatasetError
from geo_eval.inputs.keys import positions
from geo_eval.inputs.problems import INFO, WARNING, Problems
from geo_eval.inputs.uscc import normalize_uscc, uscc_problems
from geo_eval.inputs.validate import Inputs

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

# --- reading and applying a corrections table (pure: frames in, frames out) --------------------------------

RUN_VALUE_TOLERANCE = 0.01
"""Absolute tolerance when a number's ``run_value`` is compared with the input (the run shows figures
rounded to 2–4 decimals); above 10 000 the tolerance is relative, :data:`RUN_VALUE_RELATIVE`."""
RUN_VALUE_RELATIVE = 1e-6

APPLIED_COLUMNS: tuple[str, ...] = ("correction_id", "objection_id", "table", "key", "field", "before", "after")
"""The columns of :attr:`Corrected.applied`: one row per applied correction, values as text (``""``: none)."""

_SKIPPED = "该条更正未执行"
CORRECTION_CHECKS: dict[str, tuple[str, str]] = {
    # code: severity, action (the problem names the correction and is made per row)
    "correction_applied": (INFO, "已按更正后的数值评价（输入文件未改动）"),
    "correction_missing_id": (WARNING, f"{_SKIPPED}；请填写更正编号 correction_id"),
    "correction_duplicate_id": (WARNING, f"{_SKIPPED}（同一编号的各条都不执行）；请给每条更正不同的编号"),
    "correction_unknown_field": (WARNING, f"{_SKIPPED}；field 应为可更正的字段名（见 docs/data-contract.md 第 14 节）"),
    "correction_bad_key": (WARNING, f"{_SKIPPED}；企业字段填 uscc，宗地字段填 parcel_id，另一列留空"),
    "correction_bad_value": (WARNING, f"{_SKIPPED}；请改正后重新运行"),
    "correction_conflict": (WARNING, f"{_SKIPPED}（同一记录同一字段的各条都不执行）；请只保留一条"),
    "correction_unknown_key": (WARNING, f"{_SKIPPED}；请核对代码"),
    "correction_run_value_mismatch": (
        WARNING,
        f"{_SKIPPED}；输入数据已与作出更正时的评价不同，请核对后重新确认更正（改正 run_value）",
    ),
}
"""Every problem a corrections table can give: its severity and action (docs/data-contract.md section 9)."""


@dataclass(frozen=True)
class CorrectionTable:
    """A corrections table as read: :data:`CORRECTION_COLUMNS` as stripped text (``""`` for blank) and
    ``source_row`` (its row number in the file, the header being row 1)."""

    frame: pd.DataFrame
    file: str
    """How problems name the table (the path as given)."""
    sha256: str
    """The sha256 of the file's bytes (of a frame: of its text as csv)."""

    @property
    def label(self) -> str:
        """The table's name in ``manifest.json`` (``inputs.corrections.path``)."""
        return self.file

    @property
    def count(self) -> int:
        """The number of corrections (non-blank rows)."""
        return len(self.frame)


@dataclass(frozen=True)
class Corrected:
    """Inputs with the corrections applied, and what was applied."""

    inputs: Inputs
    applied: pd.DataFrame
    """One row per applied correction (:data:`APPLIED_COLUMNS`)."""
    summary: dict[str, object]
    """The manifest's ``corrections``: ``path``, ``sha256``, ``count``, ``applied``, ``rejected``."""


def check_columns(columns: Sequence[object], file: str) -> None:
    """Raise :class:`~geo_eval.errors.DatasetError` unless ``columns`` are exactly :data:`CORRECTION_COLUMNS`."""
    names = [str(c).strip() for c in columns]
    expected = "、".join(CORRECTION_COLUMNS)
    missing = [c for c in CORRECTION_COLUMNS if c not in names]
    if missing:
        raise DatasetError(f"更正文件 {file} 缺少列 {'、'.join(missing)}（应有且只有这些列：{expected}）")
    extra = [c for c in names if c not in CORRECTION_COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if extra or repeated:
        what = f"有不认识的列 {'、'.join(extra)}" if extra else f"列 {'、'.join(repeated)} 出现了不止一次"
        raise DatasetError(f"更正文件 {file} {what}（应有且只有这些列：{expected}）")


def correction_table(
    frame: pd.DataFrame, file: str = CORRECTIONS_FILE, *, sha256: str | None = None
) -> CorrectionTable:
    """``frame`` (a corrections table read as text, or built in a notebook) as a :class:`CorrectionTable`:
    columns checked, cells stripped, blank rows left out; row numbers count the header as row 1."""
    check_columns(list(frame.columns), file)
    frame = frame.rename(columns=lambda c: str(c).strip())
    text = pd.DataFrame({c: _cells(frame[c]) for c in CORRECTION_COLUMNS}, index=frame.index)
    text["source_row"] = np.arange(2, len(frame) + 2, dtype=np.int64)
    text = text.loc[(text[list(CORRECTION_COLUMNS)] != "").any(axis=1).to_numpy()].reset_index(drop=True)
    if sha256 is None:
        csv = text[list(CORRECTION_COLUMNS)].to_csv(index=False, lineterminator="\n")
        sha256 = hashlib.sha256(csv.encode("utf-8")).hexdigest()
    return CorrectionTable(text, file, sha256)


def _cells(s: pd.Series) -> pd.Series:
    """Cells as stripped NFKC text, ``""`` for blank (``1500.0`` read as a number stays ``1500.0``)."""
    out = s.astype("string").fillna("").str.normalize("NFKC").str.strip()
    return out.astype(object)


def apply_corrections(inputs: Inputs, table: CorrectionTable) -> Corrected:
    """The corrections of ``table`` that match ``inputs`` applied on copies of its frames (``inputs`` is
    left as it is), in canonical units. Each applied correction is a ``correction_applied`` row of the
    problems, each rejected one a warning saying why (:data:`CORRECTION_CHECKS`): nothing is dropped."""
    problems = inputs.problems.copy()
    rows = _typed_rows(table.frame)
    problems.set_keys(table.file, rows["source_row"].to_numpy(), rows["key_text"])
    report = _Reporter(problems, table.file, rows)
    _check_rows(rows, report)
    _match_inputs(rows, inputs, report)
    ok = report.ok
    parcels, enterprises = _applied_frames(inputs, rows.loc[ok])
    applied = _applied_rows(rows.loc[ok])
    report.applied(rows.loc[ok], applied)
    new = dataclasses.replace(inputs, parcels=parcels, enterprises=enterprises, problems=problems, corrections=applied)
    n = int(ok.sum())
    summary: dict[str, object] = {
        "path": table.label,
        "sha256": table.sha256,
        "count": table.count,
        "applied": n,
        "rejected": table.count - n,
    }
    return Corrected(new, applied, summary)


def _typed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with the field's table, kind and label, the key (normalised) and the typed values."""
    rows = frame.copy()
    spec = [CORRECTABLE_FIELDS.get(name) for name in rows["field"]]
    rows["known"] = [f is not None for f in spec]
    for attr in ("table", "kind", "label", "unit"):
        rows[attr] = pd.Series(
            [getattr(f, attr) if f is not None else "" for f in spec], index=rows.index, dtype=object
        )
    rows["uscc_key"] = normalize_uscc(rows["uscc"].replace("", None)).fillna("").astype(object)
    rows["parcel_key"] = rows["parcel_id"].str.upper()
    rows["key"] = np.where(rows["table"] == "parcels", rows["parcel_key"], rows["uscc_key"])
    both = (rows["uscc_key"] != "") & (rows["parcel_key"] != "")
    either = np.where(rows["uscc_key"] != "", rows["uscc_key"], rows["parcel_key"])
    rows["key_text"] = np.where(both, rows["uscc_key"] + "/" + rows["parcel_key"], either)
    number = rows["kind"] == "number"
    rows["new_number"] = np.where(number, pd.to_numeric(rows["corrected_value"], errors="coerce"), np.nan)
    rows["run_number"] = np.where(number, pd.to_numeric(rows["run_value"], errors="coerce"), np.nan)
    return rows


class _Reporter:
    """Records rejected rows (each row at most once) and the applied ones."""

    def __init__(self, problems: Problems, file: str, rows: pd.DataFrame) -> None:
        self.problems, self.file, self.rows = problems, file, rows
        self.ok = np.ones(len(rows), dtype=bool)

    def reject(self, code: str, where: np.ndarray, problem: pd.Series | str, values: pd.Series | None = None) -> None:
        """Reject the rows ``where`` marks that are not rejected yet, with ``problem`` (per row or one text)."""
        hit = np.asarray(where, dtype=bool) & self.ok
        if not hit.any():
            return
        r = self.rows.loc[hit]
        text = problem.loc[hit] if isinstance(problem, pd.Series) else pd.Series(problem, index=r.index)
        self._add(code, r, _named(r) + text.astype(str), r["corrected_value"] if values is None else values.loc[hit])
        self.ok &= ~hit

    def applied(self, rows: pd.DataFrame, applied: pd.DataFrame) -> None:
        """One ``correction_applied`` row per applied correction, with the value before and after."""
        if not len(rows):
            return
        before, after = applied["before"].replace("", "空"), applied["after"].replace("", "空")
        unit = rows["unit"].where(rows["unit"] == "", " " + rows["unit"]).to_numpy()
        problem = (
            _named(rows) + rows["label"].to_numpy() + "由 " + before.to_numpy() + " 改为 " + after.to_numpy() + unit
        )
        self._add("correction_applied", rows, pd.Series(problem, index=rows.index), before + " → " + after)

    def _add(self, code: str, rows: pd.DataFrame, problem: pd.Series, values: pd.Series) -> None:
        severity, action = CORRECTION_CHECKS[code]
        self.problems.add(
            file=self.file,
            rows=rows["source_row"].to_numpy(),
            field=rows["field"].where(rows["field"] != "", "field").to_numpy(),  # type: ignore[arg-type]
            values=np.asarray(values, dtype=object),
            problem=pd.Series(problem.to_numpy(dtype=object)),
            severity=severity,
            action=action,
            code=code,
        )


def _named(rows: pd.DataFrame) -> pd.Series:
    """``更正 C001（异议 O-17）：`` for each row."""
    objection = rows["objection_id"].where(rows["objection_id"] == "", "（异议 " + rows["objection_id"] + "）")
    return "更正 " + rows["correction_id"].where(rows["correction_id"] != "", "（无编号）") + objection + "："


def _check_rows(rows: pd.DataFrame, report: _Reporter) -> None:
    """The checks of the table alone: ids, fields, keys, values, repeats."""
    report.reject("correction_missing_id", (rows["correction_id"] == "").to_numpy(), "缺少更正编号")
    fields = "、".join(CORRECTABLE_FIELDS)
    unknown = ~rows["known"].to_numpy()
    report.reject("correction_unknown_field", unknown, "字段“" + rows["field"] + f"”不能更正（可更正的字段：{fields}）")
    _check_keys(rows, report)
    _check_values(rows, report)
    dup_id = (rows["correction_id"] != "") & rows["correction_id"].duplicated(keep=False)
    report.reject("correction_duplicate_id", dup_id.to_numpy(), "更正编号重复（同一编号出现在多行）")
    live = pd.Series(report.ok, index=rows.index)
    pair = rows["table"] + "\x1f" + rows["key"] + "\x1f" + rows["field"]
    conflict = live & pair.where(live).duplicated(keep=False) & pair.where(live).notna()
    report.reject("correction_conflict", conflict.to_numpy(), "同一记录的同一字段有多条更正")


def _check_keys(rows: pd.DataFrame, report: _Reporter) -> None:
    parcel = (rows["table"] == "parcels").to_numpy()
    has_uscc, has_parcel = (rows["uscc_key"] != "").to_numpy(), (rows["parcel_key"] != "").to_numpy()
    report.reject(
        "correction_bad_key",
        parcel & (~has_parcel | has_uscc),
        "宗地字段“" + rows["field"] + "”须填宗地代码 parcel_id，uscc 留空",
        rows["key_text"],
    )
    report.reject(
        "correction_bad_key",
        ~parcel & (~has_uscc | has_parcel),
        "企业字段“" + rows["field"] + "”须填统一社会信用代码 uscc，parcel_id 留空",
        rows["key_text"],
    )


def _check_values(rows: pd.DataFrame, report: _Reporter) -> None:
    number = (rows["kind"] == "number").to_numpy()
    new, run = rows["new_number"].to_numpy(dtype=float), rows["run_number"].to_numpy(dtype=float)
    label = rows["label"]
    report.reject("correction_bad_value", number & ~np.isfinite(new), "更正后的" + label + "为空或不是数字")
    report.reject("correction_bad_value", number & (new < 0), "更正后的" + label + "为负数")
    area = (rows["field"] == "registered_area_m2").to_numpy()
    report.reject("correction_bad_value", area & (new <= 0), "更正后的用地面积须大于 0")
    bad_run = number & (rows["run_value"] != "").to_numpy() & ~np.isfinite(run)
    report.reject("correction_bad_value", bad_run, "评价中的值 run_value 不是数字", rows["run_value"])
    code = (rows["kind"] == "code").to_numpy() & (rows["corrected_value"] != "").to_numpy()
    if code.any():
        reasons = uscc_problems(normalize_uscc(rows["corrected_value"].replace("", None)))
        bad = code & (reasons != "").to_numpy()
        report.reject("correction_bad_value", bad, "更正后的权利人统一社会信用代码校验不通过：" + reasons)


def _match_inputs(rows: pd.DataFrame, inputs: Inputs, report: _Reporter) -> None:
    """Reject corrections of records the inputs do not have, and those whose ``run_value`` is not the input's."""
    pos = _positions(rows, inputs)
    what = np.where(rows["table"] == "parcels", "宗地代码 ", "统一社会信用代码 ")
    where = np.where(rows["table"] == "parcels", " 不在宗地图层中", " 不在企业表中")
    report.reject("correction_unknown_key", pos < 0, what + rows["key"] + where, rows["key"])
    current = _current_values(rows, inputs, pos)
    rows["before_text"] = current
    same = _same(rows, current)
    shown = pd.Series(current, index=rows.index).replace("", "空")
    run = rows["run_value"].replace("", "空")
    problem = rows["label"] + "：更正依据的评价值为 " + run + "，本次输入中为 " + shown
    report.reject("correction_run_value_mismatch", ~same, problem, "run_value=" + run + "；输入=" + shown)


def _positions(rows: pd.DataFrame, inputs: Inputs) -> np.ndarray:
    """Each row's record in its input table (-1: absent)."""
    out = np.full(len(rows), -1, dtype=np.int64)
    for table, frame in (("parcels", inputs.parcels), ("enterprises", inputs.enterprises)):
        at = (rows["table"] == table).to_numpy()
        if at.any():
            out[at] = positions(frame.index, rows.loc[at, "key"])
    return out


def _current_values(rows: pd.DataFrame, inputs: Inputs, pos: np.ndarray) -> np.ndarray:
    """The input's value of each row's field, as text (``""``: none)."""
    out = np.full(len(rows), "", dtype=object)
    for i, (table, field, p) in enumerate(zip(rows["table"], rows["field"], pos, strict=True)):
        if p >= 0:
            frame = inputs.parcels if table == "parcels" else inputs.enterprises
            out[i] = _text(frame[field].iloc[p]) if field in frame.columns else ""
    return out


def _text(v: object) -> str:
    """A value as the exceptions and the applied list show it: numbers in their shortest digits."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
        return np.format_float_positional(float(v), trim="-")
    return str(v)


def _same(rows: pd.DataFrame, current: np.ndarray) -> np.ndarray:
    """Whether each row's ``run_value`` is the input's value: numbers within the tolerance, text exactly."""
    cur = pd.to_numeric(pd.Series(current, index=rows.index).replace("", None), errors="coerce").to_numpy(dtype=float)
    run = rows["run_number"].to_numpy(dtype=float)
    both = np.isfinite(run) & np.isfinite(cur)
    tol = np.maximum(RUN_VALUE_TOLERANCE, RUN_VALUE_RELATIVE * np.abs(np.where(both, cur, 0.0)))
    close = both & (np.abs(np.where(both, run - cur, 0.0)) <= tol)
    number = np.where((rows["run_value"] == "").to_numpy(), np.isnan(cur), close)
    run_text = rows["run_value"].where(rows["kind"] != "code", rows["run_value"].str.upper())
    text = run_text.to_numpy(dtype=object) == current
    return np.where((rows["kind"] == "number").to_numpy(), number, text)


def _new_values(rows: pd.DataFrame) -> pd.Series:
    """Each row's corrected value typed for its column (a number, a normalised code, a text; ``NA`` for none)."""
    out = pd.Series(rows["corrected_value"].replace("", None), index=rows.index, dtype=object)
    number = rows["kind"] == "number"
    out[number] = rows.loc[number, "new_number"].to_numpy(dtype=object)
    code = rows["kind"] == "code"
    out[code] = normalize_uscc(rows.loc[code, "corrected_value"].replace("", None)).astype(object)
    return out


def _applied_frames(inputs: Inputs, rows: pd.DataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Copies of the parcels and enterprises with ``rows`` applied (the inputs' frames untouched)."""
    parcels, enterprises = inputs.parcels.copy(), inputs.enterprises.copy()
    values = _new_values(rows)
    for (table, field), group in rows.groupby(["table", "field"], sort=True):
        frame = parcels if table == "parcels" else enterprises
        keys = group["key"].to_numpy()
        new = pd.Series(values.loc[group.index].to_numpy(), index=keys)
        frame.loc[keys, field] = new.astype(frame[field].dtype) if field in frame.columns else new
    return parcels, enterprises


def _applied_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The applied list: id, objection, table, key, field, and the values before and after as text."""
    values = _new_values(rows)
    return pd.DataFrame(
        {
            "correction_id": rows["correction_id"].to_numpy(dtype=object),
            "objection_id": rows["objection_id"].to_numpy(dtype=object),
            "table": rows["table"].to_numpy(dtype=object),
            "key": rows["key"].to_numpy(dtype=object),
            "field": rows["field"].to_numpy(dtype=object),
            "before": _before(rows),
            "after": np.array([_text(v) for v in values], dtype=object),
        },
        columns=list(APPLIED_COLUMNS),
    )


def _before(rows: pd.DataFrame) -> np.ndarray:
    """The input value each applied row replaces (its ``run_value`` matched it)."""
    return rows["before_text"].to_numpy(dtype=object)


def corrected_keys(inputs: Inputs, field: str) -> pd.Index:
    """The records (parcel codes or USCCs) whose ``field`` a correction changed."""
    c = inputs.corrections
    if c is None or not len(c):
        return pd.Index([], dtype=object)
    return pd.Index(c.loc[c["field"] == field, "key"].to_numpy(dtype=object))


def corrected_fields(enterprises: pd.Index, allocation: pd.DataFrame, applied: pd.DataFrame) -> np.ndarray:
    """For each enterprise (USCC), the fields corrected for it joined by ``;`` in :data:`CORRECTABLE_FIELDS`
    order (``""``: none). A parcel field counts for every enterprise using the parcel (``allocation``:
    ``parcel_id``, ``uscc``), and a ``holder_uscc`` correction also for the holder before it."""
    ent_rows = applied.loc[applied["table"] == "enterprises", ["key", "field"]]
    parcel_rows = applied.loc[applied["table"] == "parcels", ["key", "field", "before"]]
    users = allocation[["parcel_id", "uscc"]].merge(parcel_rows, left_on="parcel_id", right_on="key")
    old_holders = parcel_rows.loc[parcel_rows["field"] == "holder_uscc", ["before", "field"]]
    pairs = pd.concat(
        [
            ent_rows.rename(columns={"key": "uscc"}),
            users[["uscc", "field"]],
            old_holders.rename(columns={"before": "uscc"}),
        ],
        ignore_index=True,
    )
    order = {name: i for i, name in enumerate(CORRECTABLE_FIELDS)}
    pairs = pairs.drop_duplicates().assign(_o=pairs["field"].map(order)).sort_values(["uscc", "_o"], kind="mergesort")
    joined = pairs.groupby("uscc", sort=False)["field"].agg(";".join)
    return joined.reindex(enterprises).fillna("").to_numpy(dtype=object)
