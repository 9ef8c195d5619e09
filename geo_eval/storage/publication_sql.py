"""Publication and objections on a SQL store: the part of :class:`~geo_eval.storage.sql.SQLStore` for
run status (草稿 → 公示中 → 已发布), objections with their decisions and evidence files.

The guarantees are the reviews': every change is one transaction with its audit entry; deciding an
objection is a compare-and-set on its ``version`` (a stale one raises
:class:`~geo_eval.storage.errors.ConflictError`, the service's 409, and changes nothing); a final run is
locked (:class:`~geo_eval.publication.status.RunLockedError`). The rules of moves, values and files are
pure functions of :mod:`geo_eval.publication`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from geo_eval.publication import objections as rules
from geo_eval.publication import status as moves
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage.base import AuditEntry, RunRecord
from geo_eval.storage.common import now
from geo_eval.storage.errors import ConflictError, InvalidValueError, NotFoundError, RunLockedError

if TYPE_CHECKING:
    from geo_eval.publication.objections import EvidenceFile, Objection
    from geo_eval.storage.sql import Dialect, Row, Tx

log = logging.getLogger(__name__)

RUN_STATUS_TEXT_COLUMNS = (
    "publicity_start",
    "publicity_end",
    "status_at",
    "status_by",
    "superseded_by",
    "supersede_reason",
)
"""Text columns migration 4 adds to ``runs`` (besides ``status`` and ``version``)."""
NUMBER_VERSIONS = (
    "UPDATE {t}runs SET version = (SELECT count(*) FROM {t}runs r2 "
    "WHERE r2.year = {t}runs.year AND r2.seq <= {t}runs.seq)"
)
"""Migration 4's data: the runs registered before are numbered per year in the order registered."""

_OBJECTION_COLUMNS = (
    "year, run_id, park, uscc, parcel_id, enterprise, field, run_value, claimed_value, reason, status, "
    "version, created_by, created_at"
)
_OBJECTION_MARKS = ", ".join("?" * len(_OBJECTION_COLUMNS.split(", ")))


def objection_entity(objection_id: int) -> str:
    """How the audit trail names an objection."""
    return f"objection:{objection_id}"


class PublicationSQL:
    """Run status and objections (mixed into :class:`~geo_eval.storage.sql.SQLStore`, which gives the
    connections and the dialect); the audit trail's one append is written here, for both."""

    dialect: ClassVar[Dialect]

    def _read(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    @classmethod
    def _run(cls, row: Row) -> RunRecord:
        raise NotImplementedError

    @classmethod
    def _entry(cls, row: Row) -> AuditEntry:
        raise NotImplementedError

    @classmethod
    def _append_audit(
        cls,
        tx: Tx,
        *,
        actor: str,
        action: str,
        entity: str,
        run_id: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        at: str,
    ) -> None:
        """Append one entry to the audit trail, in the transaction ``tx`` (every store change has one)."""
        d = cls.dialect
        tx.run(
            "INSERT INTO {t}audit (at, actor, action, entity, run_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at, actor, action, entity, run_id, d.json_param(before), d.json_param(after)),
        )

    # run status ------------------------------------------------------------------------------------
    def set_run_status(self, year: int, to: str, *, start: str = "", end: str = "", actor: str) -> RunRecord:
        """Move the current run of ``year`` (the latest registered) to ``publicity`` or ``final``."""
        at = now()
        with self._write() as tx:
            self.dialect.lock_table(tx, "runs")
            row = tx.one("SELECT * FROM {t}runs WHERE year = ? ORDER BY seq DESC LIMIT 1", (year,))
            if row is None:
                raise NotFoundError(f"没有 {year} 年度的评价批次")
            had = tx.one("SELECT 1 AS found FROM {t}runs WHERE year = ? AND publicity_start <> ''", (year,))
            first, last = moves.check_move(row["status"], to, had_publicity=had is not None, start=start, end=end)
            if to == "final":
                first, last = row["publicity_start"], row["publicity_end"]
            tx.run(
                "UPDATE {t}runs SET status = ?, publicity_start = ?, publicity_end = ?, status_at = ?, status_by = ? "
                "WHERE run_id = ?",
                (to, first, last, at, actor, row["run_id"]),
            )
            before = {k: row[k] for k in ("status", "publicity_start", "publicity_end")}
            after = {"status": to, "publicity_start": first, "publicity_end": last}
            self._append_audit(
                tx, actor=actor, action="run.status", entity=row["run_id"], run_id=row["run_id"],
                before=before, after=after, at=at,
            )  # fmt: skip
            new = tx.one("SELECT * FROM {t}runs WHERE run_id = ?", (row["run_id"],))
        log.info("run %s of %s moved to %s by %s", row["run_id"], year, to, actor)
        return self._run(new)

    def final_run(self, year: int) -> RunRecord | None:
        """The year's final (已发布) run in force, or None: the latest one made final (a run replacing it with
        ``supersede`` is in force only once it is final itself)."""
        with self._read() as tx:
            row = tx.one("SELECT * FROM {t}runs WHERE year = ? AND status = 'final' ORDER BY seq DESC LIMIT 1", (year,))
        return None if row is None else self._run(row)

    @classmethod
    def _register_version(cls, tx: Tx, rec: RunRecord) -> int:
        """The version a new run of its year gets; refuses to replace the year's final run (by a new run, or
        by registering another one again) without ``supersede``."""
        final = tx.one(
            "SELECT run_id FROM {t}runs WHERE year = ? AND status = 'final' AND superseded_by = '' AND run_id <> ?",
            (rec.year, rec.run_id),
        )
        if final is not None and not rec.supersede:
            raise RunLockedError(
                f"{rec.year} 年度评价结果已正式发布（批次 {final['run_id']}），已锁定；"
                "如确需以新批次取代，请加 --supersede 并用 --reason 说明理由"
            )
        if rec.supersede and not rec.supersede_reason.strip():
            raise InvalidValueError("取代已发布的批次须说明理由（--reason）")
        found = tx.one("SELECT coalesce(max(version), 0) + 1 AS v FROM {t}runs WHERE year = ?", (rec.year,))
        return int(found["v"]) if found is not None else 1

    @classmethod
    def _supersede(cls, tx: Tx, rec: RunRecord, *, actor: str, at: str) -> None:
        """Mark the year's other runs as replaced by ``rec``, now the year's current run (a final one with an
        audit entry); ``rec`` itself, registered again, is no longer replaced."""
        tx.run("UPDATE {t}runs SET superseded_by = '' WHERE run_id = ?", (rec.run_id,))
        rows = tx.all(
            "SELECT run_id, status FROM {t}runs WHERE year = ? AND superseded_by = '' AND run_id <> ?",
            (rec.year, rec.run_id),
        )
        for row in rows:
            tx.run("UPDATE {t}runs SET superseded_by = ? WHERE run_id = ?", (rec.run_id, row["run_id"]))
            if row["status"] == "final":
                cls._append_audit(
                    tx, actor=actor, action="run.supersede", entity=row["run_id"], run_id=row["run_id"],
                    before={"status": "final"}, after={"superseded_by": rec.run_id, "reason": rec.supersede_reason},
                    at=at,
                )  # fmt: skip

    # objections ------------------------------------------------------------------------------------
    @staticmethod
    def _objection(row: Row, files: Sequence[EvidenceFile] = ()) -> Objection:
        keys = rules.Objection.__dataclass_fields__.keys() - {"files"}
        values = {k: row[k] for k in keys}
        values["id"], values["year"], values["version"] = int(row["id"]), int(row["year"]), int(row["version"])
        return rules.Objection(**values, files=tuple(files))

    @staticmethod
    def _file(row: Row) -> EvidenceFile:
        keys = rules.EvidenceFile.__dataclass_fields__.keys()
        values = {k: row[k] for k in keys}
        values["objection_id"], values["file_no"], values["size"] = (
            int(row["objection_id"]), int(row["file_no"]), int(row["size"])
        )  # fmt: skip
        return rules.EvidenceFile(**values)

    def add_objection(self, draft: Objection, *, run_id: str, actor: str) -> Objection:
        """Record ``draft`` (its subject as :func:`~geo_eval.publication.objections.find_subject` found it in
        run ``run_id``); the run must still be the year's current run and in its publicity period."""
        rules.correctable(draft.field)
        claimed = rules.clean_value(draft.field, draft.claimed_value, "主张值")
        reason = rules.clean_reason(draft.reason, "异议理由")
        at = now()
        with self._write() as tx:
            self.dialect.lock_table(tx, "runs")  # a status change waits for us, and we for it
            run = tx.one("SELECT * FROM {t}runs WHERE year = ? ORDER BY seq DESC LIMIT 1", (draft.year,))
            if run is None:
                raise NotFoundError(f"没有 {draft.year} 年度的评价批次")
            if run["run_id"] != run_id:
                raise InvalidValueError(f"{draft.year} 年度的当前批次已更新为 {run['run_id']}，请刷新页面后重新填写")
            why = moves.objection_window(run["status"], run["publicity_start"], run["publicity_end"])
            if why:
                raise RunLockedError(why)
            values = (draft.year, run_id, draft.park, draft.uscc, draft.parcel_id, draft.enterprise, draft.field)
            found = tx.one(
                f"INSERT INTO {{t}}objections ({_OBJECTION_COLUMNS}) VALUES ({_OBJECTION_MARKS}) RETURNING id",
                (*values, draft.run_value, claimed, reason, "open", 1, actor, at),
            )
            assert found is not None
            new = tx.one("SELECT * FROM {t}objections WHERE id = ?", (int(found["id"]),))
            objection = self._objection(new)
            self._append_audit(
                tx, actor=actor, action="objection.add", entity=objection_entity(objection.id), run_id=run_id,
                before=None, after=objection.public() | {"files": []}, at=at,
            )  # fmt: skip
        log.info(
            "objection %s to %s of %s recorded by %s", objection.id, draft.field, draft.uscc or draft.parcel_id, actor
        )
        return objection

    def get_objection(self, objection_id: int) -> Objection:
        """One objection with its evidence files (:class:`NotFoundError` if none)."""
        with self._read() as tx:
            return self._load_objection(tx, objection_id)

    def _load_objection(self, tx: Tx, objection_id: int, *, lock: bool = False) -> Objection:
        row = tx.one(
            "SELECT * FROM {t}objections WHERE id = ?" + (self.dialect.for_update() if lock else ""), (objection_id,)
        )
        if row is None:
            raise NotFoundError(f"没有编号为 {objection_id} 的异议")
        files = tx.all(
            "SELECT objection_id, file_no, name, content_type, size, sha256, uploaded_by, uploaded_at "
            "FROM {t}objection_files WHERE objection_id = ? ORDER BY file_no",
            (objection_id,),
        )
        return self._objection(row, [self._file(f) for f in files])

    def list_objections(
        self, *, year: int | None = None, parks: Sequence[str] | None = None, status: str | None = None
    ) -> list[Objection]:
        """Objections, oldest first: of ``year``, of ``parks`` (None: every park) and in ``status``."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if year is not None:
            where.append("year = ?")
            params.append(year)
        if status:
            if status not in rules.OBJECTION_STATUS_LABELS:
                raise InvalidValueError(f"异议状态 {status!r} 无效；可用：open、accepted、rejected")
            where.append("status = ?")
            params.append(status)
        with self._read() as tx:
            rows = tx.all(f"SELECT * FROM {{t}}objections WHERE {' AND '.join(where)} ORDER BY id", params)
            if parks is not None:
                rows = [r for r in rows if r["park"] in set(parks)]
            files: dict[int, list[EvidenceFile]] = {}
            if rows:
                for f in tx.all(
                    "SELECT objection_id, file_no, name, content_type, size, sha256, uploaded_by, uploaded_at "
                    f"FROM {{t}}objection_files WHERE objection_id IN (SELECT id FROM {{t}}objections WHERE "
                    f"{' AND '.join(where)}) ORDER BY objection_id, file_no",
                    params,
                ):
                    files.setdefault(int(f["objection_id"]), []).append(self._file(f))
        return [self._objection(r, files.get(int(r["id"]), [])) for r in rows]

    def decide_objection(
        self, objection_id: int, *, decision: str, corrected_value: str, reason: str, version: int, actor: str
    ) -> Objection:
        """Compare-and-set the decision: 采纳 ``accepted`` with the corrected value (the claim when empty) or
        不采纳 ``rejected`` with a reason; refused once the year is final."""
        if decision not in rules.DECISIONS:
            raise InvalidValueError(f"处理结果 {decision!r} 无效；可用：accepted（采纳）、rejected（不采纳）")
        at = now()
        with self._write() as tx:
            current = self._load_objection(tx, objection_id, lock=True)
            self._check_not_final(tx, current.year)
            if current.version != version:
                raise objection_conflict(current, version)
            value, why = self._decision_values(current, decision, corrected_value, reason)
            changed = tx.run(
                "UPDATE {t}objections SET status = ?, corrected_value = ?, decision_reason = ?, version = ?, "
                "decided_by = ?, decided_at = ? WHERE id = ? AND version = ?",
                (decision, value, why, version + 1, actor, at, objection_id, version),
            )
            if changed != 1:
                raise objection_conflict(current, version)
            new = self._load_objection(tx, objection_id)
            self._append_audit(
                tx, actor=actor, action="objection.decide", entity=objection_entity(objection_id),
                run_id=current.run_id, before=current.state(), after=new.state(), at=at,
            )  # fmt: skip
        log.info("objection %s %s by %s", objection_id, decision, actor)
        return new

    @staticmethod
    def _decision_values(current: Objection, decision: str, corrected: str, reason: str) -> tuple[str, str]:
        if decision == "rejected":
            return "", rules.clean_reason(reason, "不采纳的理由")
        text = corrected if str(corrected or "").strip() else current.claimed_value
        return rules.clean_value(current.field, text, "更正值"), rules.clean_reason(reason, "处理意见", required=False)

    @staticmethod
    def _check_not_final(tx: Tx, year: int) -> None:
        final = tx.one("SELECT run_id FROM {t}runs WHERE year = ? AND status = 'final' LIMIT 1", (year,))
        if final is not None:
            raise RunLockedError(f"{year} 年度评价结果已正式发布（批次 {final['run_id']}），异议已锁定，不能再处理")

    def add_evidence(self, objection_id: int, *, name: str, data: bytes, actor: str) -> EvidenceFile:
        """Store an evidence file (PDF, PNG or JPEG, size-limited) with an undecided objection."""
        at = now()
        with self._write() as tx:
            current = self._load_objection(tx, objection_id, lock=True)
            self._check_not_final(tx, current.year)
            if current.status != "open":
                raise InvalidValueError(
                    f"异议 {objection_id} 已处理（{rules.OBJECTION_STATUS_LABELS[current.status]}），不能再补充材料"
                )
            kind, safe = rules.check_evidence(name, data, len(current.files))
            no = len(current.files) + 1
            sha = hashlib.sha256(data).hexdigest()
            tx.run(
                "INSERT INTO {t}objection_files (objection_id, file_no, name, content_type, size, sha256, content, "
                "uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (objection_id, no, safe, kind, len(data), sha, data, actor, at),
            )
            item = rules.EvidenceFile(objection_id, no, safe, kind, len(data), sha, actor, at)
            self._append_audit(
                tx, actor=actor, action="objection.evidence", entity=objection_entity(objection_id),
                run_id=current.run_id, before=None, after=item.public(), at=at,
            )  # fmt: skip
        return item

    def get_evidence(self, objection_id: int, file_no: int) -> tuple[EvidenceFile, bytes]:
        """An evidence file and its bytes (:class:`NotFoundError` if none)."""
        with self._read() as tx:
            row = tx.one(
                "SELECT * FROM {t}objection_files WHERE objection_id = ? AND file_no = ?", (objection_id, file_no)
            )
        if row is None:
            raise NotFoundError(f"异议 {objection_id} 没有第 {file_no} 个证明材料")
        return self._file(row), bytes(row["content"])

    def objection_history(self, objection_id: int) -> list[AuditEntry]:
        """The audit entries of one objection, oldest first (recorded, evidence, decisions)."""
        with self._read() as tx:
            rows = tx.all("SELECT * FROM {t}audit WHERE entity = ? ORDER BY id", (objection_entity(objection_id),))
        return [self._entry(r) for r in rows]


def objection_conflict(current: Objection, version: int) -> ConflictError:
    """The 409 of a decision submitted from ``version`` while the objection is at ``current.version``."""
    if current.status == "open":
        text = f"该异议已被修改（当前版本 {current.version}，提交的版本 {version}），请刷新后再操作"
    else:
        label = rules.OBJECTION_STATUS_LABELS[current.status]
        value = f"（更正值 {current.corrected_value}）" if current.status == "accepted" else ""
        said = f"，理由：{current.decision_reason}" if current.decision_reason else ""
        when = beijing_time(current.decided_at) or "刚才"
        text = f"该异议已被 {current.decided_by or '他人'} 于 {when} 处理为“{label}”{value}{said}，请刷新后再操作"
    return ConflictError(text, current)
