"""Request and response models, one family per resource (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_eval.scheme import DEFAULT_SCHEME
from geo_eval.storage import ROLE_LABELS, STATUS_LABELS, AuditEntry, Review, RunRecord, User
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
        )


class RunCreate(BaseModel):
    """Evaluate a dataset directory on the server (its outputs go under the data directory)."""

    model_config = ConfigDict(extra="forbid")
    dataset_dir: str = Field(description="数据集目录（含 dataset.toml），服务器上的路径")
    scheme: str = Field(DEFAULT_SCHEME, description="评价方案：内置方案名或服务器上的 TOML 文件")
    previous_run: str | None = Field(None, description="上年评价批次编号（用于基准值和年度比较）")
    flags: bool = Field(True, description="是否做闲置/低效地块标记和连片区块")


class RunRegister(BaseModel):
    """Register the outputs of an evaluation already on the server."""

    model_config = ConfigDict(extra="forbid")
    out_dir: str = Field(description="geo-eval evaluate 的输出目录")


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
class ReviewPublic(BaseModel):
    """The review state of a flag; ``version`` is what the next PATCH must send."""

    status: Literal["pending", "confirmed", "dismissed", "site_visit"]
    status_label: str
    comment: str
    version: int
    updated_by: str
    updated_at: str

    @classmethod
    def of(cls, r: Review) -> ReviewPublic:
        return cls.model_validate(r.public())


class ReviewUpdate(BaseModel):
    """A reviewer's decision: 确认 (confirmed), 排除 (dismissed, reason required) or 待核查 (site_visit)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["confirmed", "dismissed", "site_visit"] = Field(
        description="confirmed 确认、dismissed 排除（须填理由）、site_visit 待核查"
    )
    comment: str = Field("", max_length=MAX_COMMENT, description="意见；排除时必填理由")
    version: int = Field(ge=0, description="读取时的版本号（未复核为 0）；已被他人修改则返回 409")

    @model_validator(mode="after")
    def _dismissal_needs_reason(self) -> Self:
        if self.status == "dismissed" and not self.comment.strip():
            raise ValueError("排除（dismissed）须在 comment 中填写理由")
        return self


class ReviewResult(BaseModel):
    """A flag's review after a change."""

    run_id: str
    flag_id: str
    review: ReviewPublic


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

    @classmethod
    def of(cls, e: AuditEntry) -> AuditPublic:
        return cls(
            id=e.id,
            at=e.at,
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
