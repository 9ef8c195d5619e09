"""The storage interface: users, the run registry, reviews of flags and the audit trail.

:class:`Store` is what the service and the CLI program against. Both implementations are one
:class:`~geo_eval.storage.sql.SQLStore` (the rules, written once) with a dialect:
:class:`~geo_eval.storage.sqlite.SQLiteStore`, the embedded default, and
:class:`~geo_eval.db.store.PostgresStore`. Any implementation gives the same guarantees:

- every write is one transaction (all or nothing), and a write that returned is durable;
- :meth:`Store.set_review` is a compare-and-set on ``version`` (optimistic concurrency): a stale
  version raises :class:`~geo_eval.storage.errors.ConflictError` and changes nothing;
- every change to a review, a user or the registry appends one :class:`AuditEntry` in the same
  transaction; audit entries are never updated or deleted;
- tokens are stored only as salted hashes (:mod:`geo_eval.storage.tokens`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from geo_eval.report.timefmt import beijing_time

Role = Literal["reviewer", "committee", "admin"]
ReviewStatus = Literal["pending", "confirmed", "dismissed", "site_visit"]

ROLES: tuple[Role, ...] = ("reviewer", "committee", "admin")
ROLE_LABELS: dict[str, str] = {"reviewer": "自然资源局复核人员", "committee": "园区管委会", "admin": "管理员"}
REVIEW_STATUSES: tuple[ReviewStatus, ...] = ("pending", "confirmed", "dismissed", "site_visit")
STATUS_LABELS: dict[str, str] = {"pending": "待复核", "confirmed": "确认", "dismissed": "排除", "site_visit": "待核查"}

DEFAULT_DATA_DIR = Path("data")
"""Where the service keeps its database when ``GEO_EVAL_DATA_DIR`` is not set."""


@dataclass(frozen=True)
class User:
    """A person or script allowed to use the service; ``parks`` only restricts the committee role."""

    name: str
    role: Role
    parks: tuple[str, ...] = ()
    created: str = ""
    token_id: str = ""
    session_gen: int = 0
    """Browser sessions carry the generation they were signed in at; signing out moves it on, which ends
    every session signed before (:meth:`Store.end_sessions`)."""

    def sees_all_parks(self) -> bool:
        """Reviewers and administrators see every park; a committee only its own."""
        return self.role != "committee"

    def may_see_park(self, park: object) -> bool:
        """Whether this user may see data of ``park``.

        >>> User("a", "committee", ("甲园",)).may_see_park("乙园")
        False
        >>> User("b", "reviewer").may_see_park("乙园")
        True
        """
        return self.sees_all_parks() or (isinstance(park, str) and park in self.parks)


@dataclass(frozen=True)
class Carryover:
    """What registering a run did with the reviews of its flags (:meth:`Store.add_run`).

    A review stays with a flag only while the flag is identical (same flag id, kind, rule, value,
    threshold and evidence: :func:`geo_eval.storage.runs.flag_prints`). Registering a run takes the
    reviews of the same run (registered before: ``again``) and of the run previously registered in the
    same OUT_DIR (``previous``, a run of other content that the OUT_DIR held before); per flag the latest
    review of an identical flag is kept. Counts are of reviewed flags.
    """

    again: bool = False
    """The run (the same run id) was registered before."""
    previous: str = ""
    """The other run registered before in the same OUT_DIR, whose reviews were taken over ("" if none)."""
    kept: int = 0
    """Reviewed flags whose review the run holds now (its own kept, or carried over)."""
    changed: int = 0
    """Reviewed flags whose review was not carried: the flag changed or is gone."""
    unchecked: int = 0
    """Reviewed flags of a run registered by an older geo-eval, which recorded no flag contents to compare."""

    def message(self, run_id: str) -> str:
        """What happened, in one Chinese line ("" for a first registration with nothing to carry).

        >>> Carryover(previous="2025-a-1", kept=3, changed=1).message("2025-a-2")
        '重新登记：新批次 2025-a-2（取代该输出目录中的批次 2025-a-1）；沿用复核 3 条，因标记变化未沿用 1 条'
        """
        if not (self.again or self.previous):
            return ""
        head = f"{'批次' if self.again else '新批次'} {run_id}"
        if self.previous:
            head += f"（取代该输出目录中的批次 {self.previous}）"
        text = f"重新登记：{head}；沿用复核 {self.kept} 条，因标记变化未沿用 {self.changed} 条"
        if self.unchecked:
            text += f"，{self.unchecked} 条无法核对未沿用（原批次由旧版 geo-eval 登记，未记录标记内容）"
        return text


@dataclass(frozen=True)
class RunRecord:
    """One registered evaluation run: its outputs live in ``out_dir``."""

    run_id: str
    year: int
    scheme: str
    scheme_title: str
    out_dir: str
    counts: dict[str, Any] = field(default_factory=dict)
    registered_at: str = ""
    registered_by: str = ""
    stored_at: str = ""
    """When the run's results were published into the database (``evaluate --db``); empty otherwise."""
    srid: int | None = None
    """The SRID of the stored parcel geometries (the run's Gauss-Krüger plane), when stored."""
    manifest_sha256: str = ""
    """The sha256 of the run's ``manifest.json``: the evaluation OUT_DIR must still hold to serve this run
    (empty for runs registered by an older geo-eval, checked by their run id instead)."""
    flag_prints: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    """When registering: each flag's content digest by flag id (None: unknown, reviews are left as they
    are). Not read back from the store."""
    legacy_id: str = field(default="", compare=False, repr=False)
    """When registering: the id an older geo-eval gave the same manifest (it included the version)."""
    carryover: Carryover | None = field(default=None, compare=False)
    """Returned by :meth:`Store.add_run`: what registering did with the reviews."""
    status: str = "draft"
    """草稿 ``draft`` → 公示中 ``publicity`` → 已发布 ``final`` (:mod:`geo_eval.publication.status`)."""
    version: int = 0
    """The run's version within its year (1, 2, …: each newly registered run of a year is the next)."""
    publicity_start: str = ""
    publicity_end: str = ""
    """The publicity period (``2026-03-01``), once the run was published for comment."""
    status_at: str = ""
    status_by: str = ""
    superseded_by: str = ""
    """The run registered after this one for the same year ("" while this one is the year's current run)."""
    supersede_reason: str = ""
    """Why this run replaced a final (已发布) run of its year."""
    supersede: bool = field(default=False, compare=False, repr=False)
    """When registering: replace the year's final run (needs :attr:`supersede_reason`)."""

    def status_line(self) -> str:
        """The status and version in words (``2025 年度 第 1 版 · 公示中（公示期 …）``)."""
        from geo_eval.publication.status import status_line

        return status_line(
            self.year, self.version, self.status, self.publicity_start, self.publicity_end, self.superseded_by
        )

    @property
    def stored(self) -> bool:
        """Whether the run's results are in the database (not only in ``out_dir``)."""
        return bool(self.stored_at)


@dataclass(frozen=True)
class Review:
    """The review state of one flag of one run; ``version`` 0 means never reviewed (pending)."""

    run_id: str
    flag_id: str
    status: ReviewStatus = "pending"
    comment: str = ""
    version: int = 0
    updated_by: str = ""
    updated_at: str = ""
    carried_from: str = field(default="", compare=False)
    """The run whose review of an identical flag this one carries over ("" once reviewed in this run)."""

    def state(self) -> dict[str, Any]:
        """The review as the audit trail records it (before and after a change): no derived labels."""
        return {
            "status": self.status,
            "status_label": STATUS_LABELS[self.status],
            "comment": self.comment,
            "version": self.version,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }

    def public(self) -> dict[str, Any]:
        """The fields shown to users (without the run id): :meth:`state` and ``updated_at_label``, the time
        of the last change in Beijing time (``updated_at`` stays UTC ISO text for scripts).

        >>> Review("r", "f", "confirmed", "属实", 1, "张三", "2026-12-06T11:57:03.123Z").public()["updated_at_label"]
        '2026-12-06 19:57'
        """
        return self.state() | {"updated_at_label": beijing_time(self.updated_at)}


@dataclass(frozen=True)
class AuditEntry:
    """One appended line of the audit trail: who did what to which entity, and its state before and after."""

    id: int
    at: str
    actor: str
    action: str
    entity: str
    run_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@runtime_checkable
class Store(Protocol):
    """Persistent state of the service (see the module docstring for the guarantees)."""

    def status(self) -> dict[str, Any]:
        """Health of the storage (raises :class:`~geo_eval.storage.errors.StorageError` when unusable)."""
        ...

    def close(self) -> None:
        """Release connections (the store may be used again afterwards)."""
        ...

    # users -----------------------------------------------------------------------------------------
    def add_user(
        self, name: str, role: str, parks: Sequence[str] = (), *, actor: str = "", replace: bool = False
    ) -> tuple[User, str]:
        """Create a user (or with ``replace`` update one and issue a new token); returns it and its token."""
        ...

    def get_user(self, name: str) -> User:
        """The user called ``name`` (:class:`~geo_eval.storage.errors.NotFoundError` if none)."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def authenticate(self, token: str) -> User | None:
        """The user holding ``token``, or None."""
        ...

    def rotate_token(self, name: str, *, actor: str = "") -> str:
        """Issue a new token for ``name``; the old one stops working."""
        ...

    def delete_user(self, name: str, *, actor: str = "") -> None:
        """Remove a user (their reviews and audit entries stay)."""
        ...

    def end_sessions(self, name: str, *, actor: str = "") -> User:
        """End every browser session of ``name`` (signing out): moves ``session_gen`` on; returns the user."""
        ...

    # runs ------------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord, *, actor: str = "") -> RunRecord:
        """Register a run (again: updates it and makes it the latest); returns it as stored, with its
        :class:`Carryover` (reviews kept only on identical flags, see there)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """A registered run (:class:`~geo_eval.storage.errors.NotFoundError` if none)."""
        ...

    def list_runs(self) -> list[RunRecord]:
        """Every registered run, latest first."""
        ...

    def latest_run(self, year: int | None = None) -> RunRecord:
        """The latest registered run (of ``year``)."""
        ...

    # reviews ---------------------------------------------------------------------------------------
    def get_review(self, run_id: str, flag_id: str) -> Review:
        """The review of a flag (a pending version-0 review if never reviewed)."""
        ...

    def reviews(self, run_id: str, flag_ids: Iterable[str] | None = None) -> dict[str, Review]:
        """Stored reviews of a run by flag id (only flags reviewed at least once)."""
        ...

    def set_review(self, run_id: str, flag_id: str, *, status: str, comment: str, version: int, actor: str) -> Review:
        """Compare-and-set: write the review if its version is still ``version``; returns the new review."""
        ...

    # publication and objections (geo_eval.storage.publication_sql) -------------------------------
    def set_run_status(self, year: int, to: str, *, start: str = "", end: str = "", actor: str) -> RunRecord:
        """Move the current run of ``year`` to ``publicity`` (with its dates) or ``final``."""
        ...

    def final_run(self, year: int) -> RunRecord | None:
        """The year's final (已发布) run in force (the latest made final), or None."""
        ...

    def add_objection(self, draft: Any, *, run_id: str, actor: str) -> Any:
        """Record an objection (:class:`~geo_eval.publication.objections.Objection`) to the current run."""
        ...

    def get_objection(self, objection_id: int) -> Any:
        """One objection with its evidence files."""
        ...

    def list_objections(
        self, *, year: int | None = None, parks: Sequence[str] | None = None, status: str | None = None
    ) -> list[Any]:
        """Objections, oldest first, optionally of a year, of some parks and in a status."""
        ...

    def decide_objection(
        self, objection_id: int, *, decision: str, corrected_value: str, reason: str, version: int, actor: str
    ) -> Any:
        """Compare-and-set the decision of an objection (accepted or rejected)."""
        ...

    def add_evidence(self, objection_id: int, *, name: str, data: bytes, actor: str) -> Any:
        """Store an evidence file with an open objection."""
        ...

    def get_evidence(self, objection_id: int, file_no: int) -> tuple[Any, bytes]:
        """An evidence file and its bytes."""
        ...

    def objection_history(self, objection_id: int) -> list[AuditEntry]:
        """The audit entries of one objection, oldest first."""
        ...

    # audit -----------------------------------------------------------------------------------------
    def history(self, run_id: str, flag_id: str) -> list[AuditEntry]:
        """The audit entries of one flag's review, oldest first (changes, carried over, set back)."""
        ...

    def audit(self, *, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """The latest audit entries (of a run), newest first."""
        ...
