"""Approvals: create a request, decide it once (atomically), expire it, list the waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Approval, ApprovalState, StepRun, StepState, utcnow


def aware(value: datetime) -> datetime:
    """Return `value` as an aware UTC time (SQLite hands back naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_approval(
    sessions: sessionmaker[Session],
    *,
    run: StepRun,
    ttl: timedelta,
    plan: dict[str, Any],
    reason: str = "",
) -> Approval:
    """Record a pending approval for an awaiting run."""
    now = utcnow()
    approval = Approval(
        run_id=run.id, incident_id=run.incident_id, step_id=run.step_id,
        requested_by=run.requested_by, requested_at=now, expires_at=now + ttl,
        plan=plan, reason=reason, state=ApprovalState.PENDING.value,
    )
    with sessions.begin() as session:
        session.add(approval)
    return approval


def get_approval(sessions: sessionmaker[Session], *, approval_id: int) -> Approval | None:
    """Return the approval, or None."""
    with sessions() as session:
        return session.get(Approval, approval_id)


def for_run(sessions: sessionmaker[Session], *, run_id: int) -> Approval | None:
    """Return the approval of a step run, if it has one."""
    with sessions() as session:
        stmt = select(Approval).where(Approval.run_id == run_id)
        return session.execute(stmt).scalar_one_or_none()


def set_message(sessions: sessionmaker[Session], *, approval_id: int, channel_id: str,
                message_ts: str) -> None:
    """Remember where the approval request was posted."""
    with sessions.begin() as session:
        session.execute(update(Approval).where(Approval.id == approval_id).values(
            channel_id=channel_id, message_ts=message_ts))


def set_reason(sessions: sessionmaker[Session], *, approval_id: int, reason: str,
               decision: bool = False) -> None:
    """Store the requester's reason, or (decision=True) the denier's."""
    values = {"decision_reason": reason} if decision else {"reason": reason}
    with sessions.begin() as session:
        session.execute(update(Approval).where(Approval.id == approval_id).values(**values))


def decide(
    sessions: sessionmaker[Session], *, approval_id: int, actor: str, approve: bool,
    now: datetime | None = None,
) -> bool:
    """Approve or deny a pending, unexpired approval; True only for the one caller who did.

    The state check and the change are one UPDATE, so an approval is used once however
    many people click at the same moment, in however many processes.
    """
    now = now or utcnow()
    state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
    with sessions.begin() as session:
        changed = session.execute(
            update(Approval)
            .where(Approval.id == approval_id, Approval.state == ApprovalState.PENDING.value,
                   Approval.expires_at > now)
            .values(state=state.value, decided_by=actor, decided_at=now)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            return False
        _move_waiting_run(session, approval_id, state=(
            StepState.RUNNING if approve else StepState.DENIED).value,
            approved_by=actor if approve else None, started_at=now if approve else None,
            finished_at=None if approve else now)
    return True


def _move_waiting_run(session: Session, approval_id: int, **values: Any) -> None:
    """Move the approval's run out of awaiting_approval (in the caller's transaction)."""
    run_id = session.execute(
        select(Approval.run_id).where(Approval.id == approval_id)).scalar_one()
    session.execute(
        update(StepRun)
        .where(StepRun.id == run_id, StepRun.state == StepState.AWAITING_APPROVAL.value)
        .values(**values))


def expire(sessions: sessionmaker[Session], *, approval_id: int,
           now: datetime | None = None) -> bool:
    """Mark a pending approval past its time as expired (and its run); True if it did."""
    now = now or utcnow()
    with sessions.begin() as session:
        changed = session.execute(
            update(Approval)
            .where(Approval.id == approval_id, Approval.state == ApprovalState.PENDING.value,
                   Approval.expires_at <= now)
            .values(state=ApprovalState.EXPIRED.value, decided_at=now)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            return False
        _move_waiting_run(session, approval_id, state=StepState.EXPIRED.value,
                          finished_at=now)
    return True


def pending(sessions: sessionmaker[Session]) -> list[Approval]:
    """Return every pending approval, oldest first (expired ones included until marked)."""
    with sessions() as session:
        stmt = select(Approval).where(Approval.state == ApprovalState.PENDING.value)
        return list(session.execute(stmt.order_by(Approval.id)).scalars())
