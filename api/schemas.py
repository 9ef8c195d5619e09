"""Request and response models, one family per resource (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from geo_eval.publication.status import RUN_STATUS_LABELS
from geo_eval.rating.scheme import DEFAULT_SCHEME
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import ROLE_LABELS, STATUS_LABELS, AuditEntry, Review, RunRecord, User
from geo_eval.storage.common import is_blank
from geo_eval.storage.sqlite import MAX_COMMENT


# users ---------------------------------------------------------------------------------------------
class UserPublic(BaseModel):
    """A user as shown to administrators and to the user themself (never the token)."""

    name: str
    role: Literal["reviewer", "committee", "admin"]
    role_label: str
    parks: list[str]
    created: str

    @classmethod
    def of(cls, u: User) -> UserPublic:
        return cls(name=u.name, role=u.role, role_label=ROLE_LABELS[u.role], parks=list(u.parks), created=u.created)


class UserCreate(BaseModel):
    """A new user; ``parks`` only (and at least one) for the committee role."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="用户名")
    role: Literal["reviewer", "committee", "admin"] = Field(
        description="角色：reviewer 复核人员、committee 园区管委会、admin 管理员"
    )
    parks: list[str] = Field(default_factory=list, description="园区管委会可查看的园区")
    replace: bool = Field(False, description="用户已存在时更新其角色和园区并换发令牌")


class UserToken(BaseModel):
    """A user with their new token: shown once, stored only as a salted hash."""

    user: UserPublic
    token: str


# runs ----------------------------------------------------------------------------------------------
class RunPublic(BaseModel):
    """A registered evaluation run."""

    run_id: str
    year: int
    scheme: str
    scheme_title: str
    counts: dict[str, Any]
    registered_at: str
    registered_by: str
    latest: bool = Field(description="是否为该年度最新登记的批次")
    out_dir: str | None = Field(None, description="输出目录（仅管理员可见）")
    status: str = Field("draft", description="发布状态：draft（草稿）、publicity（公示中）、final（已发布）")
    status_label: str = Field("草稿", description="发布状态（中文）")
    version: int = Field(0, description="该年度的第几版（每登记一个新批次加一）")
    publicity_start: str = Field("", description="公示开始日期（2026-03-01）")
    publicity_end: str = Field("", description="公示结束日期")
    superseded_by: str = Field("", description="取代本批次的新批次（本批次为该年度当前批次时为空）")
    supersede_reason: str = Field("", description="本批次取代已发布批次的理由")
    status_line: str = Field("", description="状态说明（页面和下载文件中显示的一行）")

    @classmethod
    def of(cls, r: RunRecord, *, latest: bool, show_dir: bool) -> RunPublic:
        return cls(
            run_id=r.run_id,
            year=r.year,
            scheme=r.scheme,
            scheme_title=r.scheme_title,
            counts=r.counts,
            registered_at=r.registered_at,
            registered_by=r.registered_by,
            latest=latest,
            out_dir=r.out_dir if show_dir else None,
            status=r.status,
            status_label=RUN_STATUS_LABELS.get(r.status, r.status),
            version=r.version,
            publicity_start=r.publicity_start,
            publicity_end=r.publicity_end,
            superseded_by=r.superseded_by,
            supersede_reason=r.supersede_reason,
            status_line=r.status_line(),
        )


class RunStatusChange(BaseModel):
    """Move the current run of a year to 公示中 (with its dates) or 已发布."""

    model_config = ConfigDict(extra="forbid")
    to: Literal["publicity", "final"] = Field(description="publicity（公示中）或 final（正式发布）")
    start: str = Field("", description="公示开始日期（to=publicity 时必填，2026-03-01）")
    end: str = Field("", description="公示结束日期（to=publicity 时必填）")


class ObjectionCreate(BaseModel):
    """An objection to a figure of the year's run (公示中)."""

    model_config = ConfigDict(extra="forbid")
    year: int = Field(description="评价年度")
    uscc: str = Field("", description="企业的统一社会信用代码（企业数据的异议）")
    parcel_id: str = Field("", description="宗地代码（宗地数据的异议；用地面积、宗地权利人）")
    field: str = Field(description="异议事项（字段名，与 corrections.csv 相同：tax、sales、registered_area_m2 …）")
    claimed_value: str = Field(description="企业主张的值")
    reason: str = Field(description="异议理由")


class ObjectionDecision(BaseModel):
    """An administrator's or reviewer's decision on an objection."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "rejected"] = Field(description="accepted（采纳）或 rejected（不采纳）")
    corrected_value: str = Field("", description="采纳时的更正值（可与主张值不同；空则取主张值）")
    reason: str = Field("", description="处理意见（不采纳时必填）")
    version: int = Field(description="读取时的版本号（乐观并发：不符返回 409）")


class RunCreate(BaseModel):
    """Evaluate a dataset directory on the server (its outputs go under the data directory)."""

    model_config = ConfigDict(extra="forbid")
    dataset_dir: str = Field(description="数据集目录（含 dataset.toml），服务器上的路径")
    scheme: str = Field(DEFAULT_SCHEME, description="评价方案：内置方案名或服务器上的 TOML 文件")
    previous_run: str | None = Field(None, description="上年评价批次编号（用于基准值和年度比较）")
    flags: bool = Field(True, description="是否做闲置/低效地块标记和连片区块")
    supersede: bool = Field(False, description="该年度已正式发布时，以本次评价取代之（须说明理由）")
    supersede_reason: str = Field("", description="取代已发布批次的理由")
    corrections_year: int | None = Field(
        None,
        ge=1900,
        le=2200,
        description="按该年度采纳的异议更正后评价（与 geo-eval objections export + evaluate --corrections 相同）",
    )


class RunRegister(BaseModel):
    """Register the outputs of an evaluation already on the server."""

    model_config = ConfigDict(extra="forbid")
    out_dir: str = Field(description="geo-eval evaluate 的输出目录")
    supersede: bool = Field(False, description="该年度已正式发布时，以本批次取代之（须说明理由）")
    supersede_reason: str = Field("", description="取代已发布批次的理由")


# rankings ------------------------------------------------------------------------------------------
class RankingsPage(BaseModel):
    """Ranking rows: the fields of ``enterprises.csv``."""

    run_id: str
    year: int
    total: int = Field(description="符合条件的企业数")
    offset: int
    limit: int | None
    columns: list[str]
    rows: list[dict[str, Any]]


# reviews -------------------------------------------------------------------------------------------
ReviewStatusField = Literal["pending", "confirmed", "dismissed", "site_visit"]
Decision = Annotated[
    ReviewStatusField,
    Field(description="confirmed 确认、dismissed 排除（须填理由）、site_visit 待核查、pending 撤回（回到待复核）"),
]
Comment = Annotated[str, Field(max_length=MAX_COMMENT, description="意见；排除时必填理由")]


def _needs_reason(status: str, comment: str) -> None:
    """排除 without a reason (or with only blanks and invisible characters): a Chinese validation message."""
    if status == "dismissed" and is_blank(comment):
        raise PydanticCustomError("dismissal_reason", "排除（dismissed）须在 comment 中填写理由")


class ReviewPublic(BaseModel):
    """The review state of a flag; ``version`` is what the next PATCH must send."""

    status: ReviewStatusField
    status_label: str
    comment: str
    version: int
    updated_by: str
    updated_at: str = Field(description="最后修改时间（UTC，ISO 8601；未复核为空）")
    updated_at_label: str = Field(description="最后修改时间（北京时间，如 2026-12-06 19:57；未复核为空）")

    @classmethod
    def of(cls, r: Review) -> ReviewPublic:
        return cls.model_validate(r.public())


class ReviewUpdate(BaseModel):
    """A reviewer's decision: 确认 (confirmed), 排除 (dismissed, reason required), 待核查 (site_visit) or
    撤回 (pending: back to 待复核)."""

    model_config = ConfigDict(extra="forbid")
    status: Decision
    comment: Comment = ""
    version: int = Field(ge=0, description="读取时的版本号（未复核为 0）；已被他人修改则返回 409")

    @model_validator(mode="after")
    def _dismissal_needs_reason(self) -> Self:
        _needs_reason(self.status, self.comment)
        return self


class ReviewResult(BaseModel):
    """A flag's review after a change."""

    run_id: str
    flag_id: str
    review: ReviewPublic


MAX_BATCH = 500


class BatchItem(BaseModel):
    """One flag of a batch and the version its review was read at."""

    model_config = ConfigDict(extra="forbid")
    flag_id: str = Field(min_length=1, description="标记编号")
    version: int = Field(ge=0, description="读取时的版本号（未复核为 0）")


class ReviewBatch(BaseModel):
    """The same decision for several flags (e.g. every flag of a parcel); each is checked on its own version."""

    model_config = ConfigDict(extra="forbid")
    status: Decision
    comment: Comment = ""
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH, description=f"标记及其版本，1–{MAX_BATCH} 条")

    @model_validator(mode="after")
    def _dismissal_needs_reason(self) -> Self:
        _needs_reason(self.status, self.comment)
        return self


class BatchSuccess(BaseModel):
    """A flag of the batch that was changed."""

    flag_id: str
    ok: Literal[True] = True
    review: ReviewPublic


class BatchFailure(BaseModel):
    """A flag of the batch that was left as it is, and why."""

    flag_id: str
    ok: Literal[False] = False
    error: Literal["conflict", "not_found", "forbidden"] = Field(
        description="conflict 已被他人修改（版本不符）、not_found 本批次没有该标记、forbidden 无权复核该园区"
    )
    detail: str = Field(description="中文说明")
    current: ReviewPublic | None = Field(description="该标记当前的复核状态（冲突时）；没有该标记或无权查看时为 null")


class BatchResult(BaseModel):
    """What became of each flag of a batch, in the order given."""

    run_id: str
    status: ReviewStatusField
    succeeded: int
    failed: int
    results: list[BatchSuccess | BatchFailure]


class AuditPublic(BaseModel):
    """One entry of the audit trail: who, when, what, before and after."""

    id: int
    at: str
    actor: str
    action: str
    entity: str
    run_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at_label: str = Field(description="时间（北京时间，如 2026-12-06 19:57）")

    @classmethod
    def of(cls, e: AuditEntry) -> AuditPublic:
        return cls(
            id=e.id,
            at=e.at,
            at_label=beijing_time(e.at),
            actor=e.actor,
            action=e.action,
            entity=e.entity,
            run_id=e.run_id,
            before=e.before,
            after=e.after,
        )


class FlagHistory(BaseModel):
    """Every change of a flag's review, oldest first."""

    run_id: str
    flag_id: str
    review: ReviewPublic
    entries: list[AuditPublic]


# health and auth -----------------------------------------------------------------------------------
class Health(BaseModel):
    """Service and storage status."""

    status: Literal["ok", "error"]
    version: str
    storage: dict[str, Any] = Field(
        description="存储状态：backend（sqlite 或 postgis）、ok、schema_version；SQLite 另有 journal_mode，"
        "PostGIS 另有 database（不含密码的数据库地址）和 postgis_version；不可用时有 error"
    )
    runs: int | None = None
    demo: bool


class Me(BaseModel):
    """The signed-in user and how they signed in."""

    user: UserPublic
    auth: Literal["bearer", "cookie"]


class Login(BaseModel):
    """Sign in with a user name and its token (JSON variant of the login form)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    token: str
    next: str | None = None


STATUS_CHOICES = tuple(STATUS_LABELS)
