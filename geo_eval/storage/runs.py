"""A run's registry record, read from the ``manifest.json`` that ``geo-eval evaluate`` writes into OUT_DIR."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from geo_eval.storage.base import RunRecord
from geo_eval.storage.errors import RunFilesError

REQUIRED_FILES = ("manifest.json", "enterprises.csv", "parcels.gpkg")


def run_id_of(manifest: dict[str, Any]) -> str:
    """A stable id from what determines the results: year, scheme, tool version, inputs and the flag switch.

    Evaluating the same inputs with the same scheme again gives the same id (so its reviews carry on);
    any change of input gives a new run.

    >>> run_id_of({"year": 2025, "scheme": {"name": "lianyungang", "sha256": "ab"}, "inputs": {}})[:17]
    '2025-lianyungang-'
    """
    scheme = manifest.get("scheme") or {}
    inputs = manifest.get("inputs") or {}
    flags = manifest.get("flags") or {}
    key = {
        "year": manifest.get("year"),
        "version": manifest.get("version"),
        "scheme": scheme.get("sha256"),
        "inputs": {k: (v or {}).get("sha256") for k, v in sorted(inputs.items())},
        "flags": flags.get("enabled", False),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(scheme.get("name") or "scheme"))
    return f"{manifest.get('year')}-{name}-{digest}"


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


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of an OUT_DIR, after checking the files the service reads are there."""
    out_dir = Path(out_dir)
    missing = [n for n in REQUIRED_FILES if not (out_dir / n).is_file()]
    if missing:
        raise RunFilesError(
            f"{out_dir} 不是完整的评价输出目录：缺少 {'、'.join(missing)}（应为 geo-eval evaluate 的 --out 目录）"
        )
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFilesError(f"{out_dir / 'manifest.json'} 无法读取：{exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("year"), int):
        raise RunFilesError(f"{out_dir / 'manifest.json'} 不是 geo-eval 的运行清单（缺少 year）")
    return manifest


def run_record(manifest: dict[str, Any], out_dir: Path) -> RunRecord:
    """The registry record of a run from its manifest (``out_dir``: where its files are or will be)."""
    scheme = manifest.get("scheme") or {}
    return RunRecord(
        run_id=run_id_of(manifest),
        year=int(manifest["year"]),
        scheme=str(scheme.get("name", "")),
        scheme_title=str(scheme.get("title", "")),
        out_dir=str(Path(out_dir).resolve()),
        counts=counts_of(manifest),
    )


def run_record_from_out_dir(out_dir: Path) -> RunRecord:
    """The registry record of an evaluation's OUT_DIR (not yet registered)."""
    return run_record(read_manifest(Path(out_dir)), out_dir)
