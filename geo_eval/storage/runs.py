"""A run's registry record, read from the ``manifest.json`` that ``geo-eval evaluate`` writes into OUT_DIR.

A run's identity follows its content: the run id is a digest of the year, the scheme's and the inputs'
sha256 and whether flags were made (:func:`run_id_of`), not of the geo-eval version. What a reviewer
decided about a flag stays with the flag only while its content is the same: :func:`flag_prints` gives
each flag's digest, which the store compares when a run is registered (see
:class:`~geo_eval.storage.base.Carryover`). The registry also keeps the sha256 of the run's
``manifest.json``, so an OUT_DIR evaluated again in place is not served under the run registered
before (:func:`read_manifest` with ``record``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geo_eval.storage.base import RunRecord
from geo_eval.storage.errors import RunFilesError

REQUIRED_FILES = ("manifest.json", "enterprises.csv", "parcels.gpkg")
PRINT_COLUMNS = ("flag", "rule_id", "value", "threshold", "evidence")
"""The columns of ``flags.csv`` that make a flag's content (with its ``flag_id``): what it is, which rule,
the measured value, the threshold and the evidence. The reason's wording, the legal basis, the
severity, the enterprises' names and the parcel's area are left out: they describe the flag, and a
new wording must not orphan a reviewer's decision."""
NUMBER_DIGITS = 9
"""Values and thresholds are compared to this many significant digits (the same number written as
``35``, ``35.0`` or ``35.00000000001`` is the same value)."""


def _content_key(manifest: dict[str, Any]) -> dict[str, Any]:
    scheme = manifest.get("scheme") or {}
    inputs = manifest.get("inputs") or {}
    flags = manifest.get("flags") or {}
    return {
        "year": manifest.get("year"),
        "scheme": scheme.get("sha256"),
        "inputs": {k: (v or {}).get("sha256") for k, v in sorted(inputs.items())},
        "flags": flags.get("enabled", False),
    }


def _id(manifest: dict[str, Any], key: dict[str, Any]) -> str:
    scheme = manifest.get("scheme") or {}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(scheme.get("name") or "scheme"))
    return f"{manifest.get('year')}-{name}-{digest}"


def run_id_of(manifest: dict[str, Any]) -> str:
    """A stable id from what determines the results: year, scheme, inputs and the flag switch.

    Evaluating the same inputs with the same scheme again gives the same id, whichever geo-eval version
    evaluates them and wherever the files are; any change of input gives a new run.

    >>> run_id_of({"year": 2025, "scheme": {"name": "lianyungang", "sha256": "ab"}, "inputs": {}})
    '2025-lianyungang-88d52f7723'
    """
    return _id(manifest, _content_key(manifest))


def legacy_run_id_of(manifest: dict[str, Any]) -> str:
    """The id geo-eval gave a run before its id left out the version (runs registered then keep it).

    >>> legacy_run_id_of({"year": 2025, "version": "0.1.0", "scheme": {"name": "x", "sha256": "ab"}})
    '2025-x-ae310dc378'
    """
    return _id(manifest, {**_content_key(manifest), "version": manifest.get("version")})


def _number(text: str) -> str:
    try:
        return format(float(text), f".{NUMBER_DIGITS}g")
    except ValueError:
        return text


def _digest(line: bytes) -> str:
    return hashlib.blake2b(line, digest_size=8).hexdigest()


def flag_print(flag: str, rule_id: str, value: str, threshold: str, evidence: str) -> str:
    """The digest of one flag's content (:data:`PRINT_COLUMNS`, as the text of ``flags.csv``).

    >>> flag_print("low_efficiency", "low_efficiency.grade_d", "35.0", "", "综合得分=35.0；分类=D")
    '6f197a36f56c7c0d'
    >>> flag_print("low_efficiency", "low_efficiency.grade_d", "35", "", "综合得分=35.0；分类=D")
    '6f197a36f56c7c0d'
    """
    return _digest("\x1f".join((flag, rule_id, _number(value), _number(threshold), evidence)).encode("utf-8"))


def _numbers(column: pa.ChunkedArray) -> pa.Array:
    """:func:`_number` of each value, each distinct value formatted once."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    texts = pa.array([_number(t) for t in encoded.dictionary.to_pylist()], type=pa.string())
    return pc.take(texts, encoded.indices)


def flag_prints(source: Path | BinaryIO) -> dict[str, str]:
    """Each flag's content digest (:func:`flag_print`) by flag id, from a run's ``flags.csv`` (a path, or
    the csv's bytes).

    The lines are joined by Arrow and only hashed in Python (about 1.5 s for the 506k flags of a
    million parcels).
    """
    columns = ["flag_id", *PRINT_COLUMNS]
    path = source if isinstance(source, Path) else "flags.csv"
    try:
        table = pacsv.read_csv(
            source,
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, include_columns=columns, strings_can_be_null=False
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise RunFilesError(f"{path} 无法读取（登记评价批次需要其中的标记）：{exc}") from exc
    if table.num_rows == 0:
        return {}
    parts = [table.column(c) if c not in ("value", "threshold") else _numbers(table.column(c)) for c in PRINT_COLUMNS]
    lines = pc.binary_join_element_wise(*parts, "\x1f").cast(pa.binary()).to_pylist()
    return dict(zip(table.column("flag_id").to_pylist(), map(_digest, lines), strict=True))


def counts_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The headline counts of a run for the registry: enterprises, parcels, leases, grades, flags, blocks."""
    counts = dict(manifest.get("counts") or {})
    grades = manifest.get("grades") or {}
    flags = manifest.get("flags") or {}
    out: dict[str, Any] = {
        "enterprises": counts.get("enterprises"),
        "parcels": counts.get("parcels"),
        "leases": counts.get("leases"),
        "exceptions": counts.get("exceptions"),
        "grades": grades.get("合计") or {},
        "flags_enabled": bool(flags.get("enabled")),
    }
    if flags.get("enabled"):
        out["flags"] = sum(int(v) for v in (flags.get("by_flag") or {}).values())
        out["flagged_parcels_by_flag"] = flags.get("parcels_by_flag") or {}
        out["blocks"] = flags.get("blocks") or {}
    return out


def read_manifest(out_dir: Path, *, record: RunRecord | None = None) -> dict[str, Any]:
    """The manifest of an OUT_DIR, after checking the files the service reads are there.

    With ``record`` (a registered run), also that OUT_DIR still holds that run: the same ``manifest.json``
    (by its sha256; for a run registered by an older geo-eval, the same run id), else
    :class:`~geo_eval.storage.errors.RunFilesError` saying to register the OUT_DIR again.
    """
    out_dir = Path(out_dir)
    missing = [n for n in REQUIRED_FILES if not (out_dir / n).is_file()]
    if missing:
        raise RunFilesError(
            f"{out_dir} 不是完整的评价输出目录：缺少 {'、'.join(missing)}（应为 geo-eval evaluate 的 --out 目录）"
        )
    try:
        data = (out_dir / "manifest.json").read_bytes()
        manifest = json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFilesError(f"{out_dir / 'manifest.json'} 无法读取：{exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("year"), int):
        raise RunFilesError(f"{out_dir / 'manifest.json'} 不是 geo-eval 的运行清单（缺少 year）")
    if record is not None:
        _check_holds(record, out_dir, hashlib.sha256(data).hexdigest(), manifest)
    return manifest


def out_dir_state(record: RunRecord) -> str:
    """Whether a registered run's OUT_DIR still holds it, in Chinese (what ``geo-eval runs list`` shows)."""
    try:
        read_manifest(Path(record.out_dir), record=record)
    except RunFilesError:
        missing = not (Path(record.out_dir) / "manifest.json").is_file()
        state = "缺失" if missing else "与登记不符，须重新登记"
        return state + ("（结果在数据库中）" if record.stored else "")
    return "一致"


def _check_holds(record: RunRecord, out_dir: Path, sha256: str, manifest: dict[str, Any]) -> None:
    """Raise :class:`RunFilesError` unless the OUT_DIR's manifest is the one ``record`` was registered with."""
    if record.manifest_sha256 == sha256 or (not record.manifest_sha256 and legacy_run_id_of(manifest) == record.run_id):
        return
    again = f"请运行 geo-eval runs add {out_dir} 重新登记（复核意见只沿用到内容未变的标记）"
    current = run_id_of(manifest)
    if current == record.run_id:
        raise RunFilesError(f"评价批次 {record.run_id} 的输出目录 {out_dir} 已重新评价，文件与登记时不同：{again}")
    raise RunFilesError(
        f"评价批次 {record.run_id} 的输出目录 {out_dir} 现在存放的是另一次评价（批次 {current}），与登记时不符：{again}"
    )


def run_record(manifest: dict[str, Any], out_dir: Path, *, files_dir: Path | None = None) -> RunRecord:
    """The registry record of a run from its manifest (``out_dir``: where its files are or will be).

    With ``files_dir`` (the directory holding the run's written files: OUT_DIR, or the temporary
    directory before it is put in place), also the sha256 of its ``manifest.json`` and the content
    digests of its flags (from ``flags.csv``), which registering needs to carry reviews over.
    """
    scheme = manifest.get("scheme") or {}
    sha = ""
    prints: dict[str, str] | None = None
    if files_dir is not None:
        sha = _sha256(Path(files_dir) / "manifest.json")
        prints = {}
        if (manifest.get("flags") or {}).get("enabled"):
            path = Path(files_dir) / "flags.csv"
            if not path.is_file():
                raise RunFilesError(f"{files_dir} 缺少 flags.csv（运行清单记载做了地块标记）")
            prints = flag_prints(path)
    return RunRecord(
        run_id=run_id_of(manifest),
        year=int(manifest["year"]),
        scheme=str(scheme.get("name", "")),
        scheme_title=str(scheme.get("title", "")),
        out_dir=str(Path(out_dir).resolve()),
        counts=counts_of(manifest),
        manifest_sha256=sha,
        flag_prints=prints,
        legacy_id=legacy_run_id_of(manifest),
    )


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise RunFilesError(f"{path} 无法读取：{exc}") from exc


def legacy_contents(run_id: str, out_dir: str | Path) -> tuple[str, dict[str, str]] | None:
    """The manifest sha256 and flag digests of a run registered by an older geo-eval (which recorded
    neither), read from its OUT_DIR if that still holds the run (the same older run id); else None.

    The schema migrations that add these records fill them in with it.
    """
    try:
        manifest = read_manifest(Path(out_dir))
        if legacy_run_id_of(manifest) != run_id:
            return None
        record = run_record(manifest, Path(out_dir), files_dir=Path(out_dir))
    except RunFilesError:
        return None
    return record.manifest_sha256, dict(record.flag_prints or {})


def run_record_from_out_dir(out_dir: Path) -> RunRecord:
    """The registry record of an evaluation's OUT_DIR (not yet registered), with its flags' digests."""
    return run_record(read_manifest(Path(out_dir)), out_dir, files_dir=Path(out_dir))
