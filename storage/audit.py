"""The append-only audit chain: append, read back and verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.models import GENESIS, AuditEvent, AuditHead, utcnow


def utc_text(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def _row_hash(row: AuditEvent, prev_hash: str) -> str:
    """Hash the canonical JSON of a row's content together with the previous hash."""
    content = {
        "seq": row.seq,
        "at": utc_text(row.at),
        "incident_id": row.incident_id,
        "actor": row.actor,
        "approver": row.approver,
        "action": row.action,
        "step_id": row.step_id,
        "outcome": row.outcome,
        "params": row.params,
        "request_ids": row.request_ids,
        "detail": row.detail,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    sessions: sessionmaker[Session],
    *,
    action: str,
    actor: str,
    outcome: str,
    incident_id: str | None = None,
    step_id: str | None = None,
    approver: str | None = None,
    params: dict[str, Any] | None = None,
    request_ids: Sequence[str] = (),
    detail: str = "",
) -> AuditEvent:
    """Append one row to the chain in its own transaction and return it."""
    with sessions.begin() as session:
        # Taking the head row first (an UPDATE) serializes writers: a row lock on
        # PostgreSQL, the write lock on SQLite.
        bumped = session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        )
        if bumped.rowcount == 0:  # type: ignore[attr-defined]
            raise RuntimeError("the audit head row is missing: run create_schema first")
        head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
        row = AuditEvent(
            seq=head.seq,
            at=utcnow(),
            incident_id=incident_id,
            actor=actor,
            approver=approver,
            action=action,
            step_id=step_id,
            outcome=outcome,
            params=_jsonable(params or {}),
            request_ids=list(request_ids),
            detail=detail,
            prev_hash=head.hash,
        )
        row.hash = _row_hash(row, head.hash)
        head.hash = row.hash
        session.add(row)
    return row


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so the stored and the hashed content are the same."""
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


def events_for(sessions: sessionmaker[Session], *, incident_id: str) -> list[AuditEvent]:
    """Return an incident's audit rows, oldest first."""
    with sessions() as session:
        stmt = select(AuditEvent).where(AuditEvent.incident_id == incident_id)
        return list(session.execute(stmt.order_by(AuditEvent.seq)).scalars())


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_broken_seq: int | None = None
    problem: str = ""


def verify(sessions: sessionmaker[Session], *, batch: int = 1000) -> ChainReport:
    """Recompute the whole chain and name the first row that does not hold."""
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    with sessions() as session:
        last_seq = 0
        while True:
            stmt = (
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            rows = list(session.execute(stmt).scalars())
            if not rows:
                break
            for row in rows:
                count += 1
                if row.seq != expected_seq:
                    return ChainReport(
                        False, count, expected_seq, f"row {expected_seq} is missing"
                    )
                if row.prev_hash != prev_hash:
                    return ChainReport(
                        False, count, row.seq,
                        f"row {row.seq} does not follow row {row.seq - 1} (prev_hash differs)",
                    )
                if _row_hash(row, prev_hash) != row.hash:
                    return ChainReport(
                        False, count, row.seq, f"row {row.seq} was altered (hash differs)"
                    )
                prev_hash = row.hash
                expected_seq += 1
                last_seq = row.seq
            session.expunge_all()
        head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev_hash):
        return ChainReport(
            False, count, expected_seq, f"the chain ends at row {expected_seq - 1} "
            f"but the head says row {head.seq}: rows after it were removed"
        )
    return ChainReport(True, count)
