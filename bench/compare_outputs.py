"""Fingerprints of a ``geo-eval evaluate`` OUT_DIR, to check that a change keeps the outputs byte-identical.

    python -m bench.compare_outputs OUT_DIR [OUT_DIR2]

One sha256 per output: the csv files as bytes; ``manifest.json`` without its timings and the paths it
was given (the inputs keep their sha256); the attribute tables of the GeoPackage layers (read with
pyogrio; geometries as WKB); the cell values of every workbook (read with openpyxl). With two
directories, prints the outputs that differ and exits 1 if any does.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

CSV_FILES = ("enterprises.csv", "flags.csv", "benchmarks.csv", "exceptions.csv")
LAYERS = (("parcels.gpkg", "parcels"), ("parcels.gpkg", "flags"), ("renewal_blocks.gpkg", None))
_MANIFEST_PATHS = ("timings_s", "database_timings_s", "dataset", "previous", "database")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(path: Path) -> str:
    m = json.loads(path.read_text(encoding="utf-8"))
    for key in _MANIFEST_PATHS:
        m.pop(key, None)
    m["inputs"] = {k: v["sha256"] for k, v in m.get("inputs", {}).items()}
    return _sha(json.dumps(m, ensure_ascii=False).encode())


def _layer(path: Path, layer: str | None) -> str:
    import pyogrio
    import shapely

    df = pyogrio.read_dataframe(path, layer=layer) if layer else pyogrio.read_dataframe(path)
    geom = shapely.to_wkb(df.geometry.to_numpy()) if df.geometry is not None else []
    attrs = df.drop(columns=df.geometry.name).to_csv(index=False).encode()
    return _sha(attrs + b"".join(geom))


def _workbook(path: Path) -> str:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    h = hashlib.sha256()
    for ws in wb.worksheets:
        h.update(ws.title.encode())
        for row in ws.iter_rows(values_only=True):
            h.update(repr(row).encode())
    wb.close()
    return h.hexdigest()


def fingerprints(out_dir: Path) -> dict[str, str]:
    """Output name → sha256 (see the module docstring)."""
    out: dict[str, str] = {}
    for name in CSV_FILES:
        if (out_dir / name).is_file():
            out[name] = _sha((out_dir / name).read_bytes())
    if (out_dir / "manifest.json").is_file():
        out["manifest.json"] = _manifest(out_dir / "manifest.json")
    for file, layer in LAYERS:
        if (out_dir / file).is_file():
            out[f"{file}:{layer or ''}"] = _layer(out_dir / file, layer)
    for book in sorted(out_dir.rglob("*.xlsx")):
        out[str(book.relative_to(out_dir))] = _workbook(book)
    return out


def main(argv: list[str]) -> int:
    a = fingerprints(Path(argv[0]))
    if len(argv) == 1:
        for k, v in a.items():
            print(f"{v}  {k}")
        return 0
    b = fingerprints(Path(argv[1]))
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    for k in sorted(a.keys() | b.keys()):
        print(f"{'DIFFERS' if k in differ else 'same   '}  {k}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
