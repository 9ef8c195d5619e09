"""GeoJSON responses built as text: geometry strings made once per run, properties per page.

>>> text = feature("P1", '{"type":"Point","coordinates":[119.1,34.6]}', {"名称": "<b>"})
>>> json.loads(text)["properties"]
{'名称': '<b>'}
>>> json.loads(feature_collection([text], numberMatched=1))["numberReturned"]
1
>>> import numpy as np
>>> _dumps({"a": 0.1, "b": None, "c": "<甲>"}), _dumps({"n": np.float64(3), 1: True})
('{"a":0.1,"b":null,"c":"<甲>"}', '{"n":3.0,"1":true}')
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi.responses import Response

from api.errors import NotFound

MEDIA_TYPE = "application/geo+json"
BBOX_HELP = "经纬度范围 minx,miny,maxx,maxy（EPSG:4326，经度在前）"


def _dumps(value: Any) -> str:
    """Compact JSON text: orjson's (six times the standard library's speed on a page of parcels, the same
    text but for the exponent of a very small or large number: ``1e-7`` for ``1e-07``), the standard
    library's for what orjson does not take (numpy scalars, keys that are not texts)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def properties_text(properties: Any) -> str:
    """The JSON text of a feature's properties, or of one of their values (as :func:`feature` writes them)."""
    return _dumps(properties)


def feature(fid: str, geometry: str | None, properties: dict[str, Any]) -> str:
    """One Feature; ``geometry`` is GeoJSON text (or None)."""
    return feature_text(fid, geometry, _dumps(properties))


def feature_text(fid: str, geometry: str | None, properties: str) -> str:
    """One Feature from the JSON text of its properties."""
    return f'{{"type":"Feature","id":{_dumps(fid)},"geometry":{geometry or "null"},"properties":{properties}}}'


def feature_collection(features: Sequence[str], **members: Any) -> str:
    """A FeatureCollection with foreign members (``numberMatched`` …) and ``numberReturned``."""
    extra = "".join(f",{_dumps(k)}:{_dumps(v)}" for k, v in members.items())
    return f'{{"type":"FeatureCollection"{extra},"numberReturned":{len(features)},"features":[{",".join(features)}]}}'


def geojson_response(text: str) -> Response:
    return Response(text, media_type=MEDIA_TYPE)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` in degrees, else a ValueError with a Chinese message.

    >>> parse_bbox("119.1,34.6,119.3,34.8")
    (119.1, 34.6, 119.3, 34.8)
    """
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise ValueError("bbox 须为 4 个数：minx,miny,maxx,maxy（经度在前）") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValueError("bbox 的数值须为有限数")
    if minx > maxx or miny > maxy:
        raise ValueError("bbox 须满足 minx ≤ maxx 且 miny ≤ maxy")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise ValueError("bbox 须为 EPSG:4326 经纬度（经度 −180～180，纬度 −90～90）")
    return minx, miny, maxx, maxy


def not_found(kind: str, key: str) -> NotFound:
    return NotFound(f"本评价批次中没有{kind} {key}")
