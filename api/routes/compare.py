"""Year over year: ``GET /api/runs/{year}/compare?previous=YEAR[&park=][&format=csv]``.

The class transition matrix between the latest runs of two years (outer key: last year's class or
``new``; inner key: this year's class or ``gone``) and the enterprises whose class changed
(:func:`geo_eval.rating.compare.transitions`). A committee gets its own park(s) only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, RunCacheDep, StoreDep, ensure_park
from api.downloads import CSV_TYPE, csv_bytes, download, file_name
from api.rundata import records
from geo_eval.rating.compare import CHANGED_COLUMNS, transitions
from geo_eval.report.labels import headers

router = APIRouter(prefix="/api/runs", tags=["评价批次"])

YearPath = Annotated[int, Path(description="评价年度（该年度最新登记的批次）", ge=1900, le=2200)]


@router.get(
    "/{year}/compare",
    summary="与上年比较：分类变化矩阵与分类变化的企业",
    description="`matrix` 的外层键为上年分类（A、B、C、D、T，或 new 上年未参评），内层键为本年分类（或 gone 本年不再参评），"
    "值为企业数；`changed` 列出分类不同的企业（含新参评和不再参评）。`park=` 只看一个园区（园区管委会只能看本园区）；"
    "`format=csv` 下载分类变化的企业（中文表头）。",
    responses={200: {"content": {"application/json": {}, CSV_TYPE: {}}}, 403: {"description": "无权查看该园区"}},
)
def compare_runs(
    year: YearPath,
    user: CurrentUser,
    store: StoreDep,
    cache: RunCacheDep,
    previous: Annotated[int, Query(description="与之比较的上一年度", ge=1900, le=2200)],
    park: Annotated[str | None, Query(description="园区名称")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json 或 csv（分类变化的企业）")] = "json",
) -> Any:
    if park:
        ensure_park(user, park)
    parks = {park} if park else (None if user.sees_all_parks() else set(user.parks))
    current = cache.get(store.latest_run(year)).enterprises
    before = cache.get(store.latest_run(previous)).enterprises
    result = transitions(current, before, parks=parks)
    if format == "csv":
        table = result.changed.rename(columns=headers(CHANGED_COLUMNS, "changes"))
        scope = park or ("全部园区" if parks is None else "、".join(sorted(parks)))
        name = file_name(f"{year}年度与{previous}年度分类变化_{scope}")
        return download(
            csv_bytes(table), filename=f"{name}.csv", fallback=f"geo-eval-changes-{year}.csv", media_type=CSV_TYPE
        )
    return {
        "year": year,
        "previous": previous,
        "matrix": result.matrix,
        "changed": records(pd.DataFrame(result.changed)),
    }
