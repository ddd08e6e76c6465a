"""Automatic-isolation countdowns: one per incident, decided (cancelled or started) once,
by a conditional UPDATE, so replicas and restarts cannot run or cancel one twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Countdown, CountdownState, utcnow


def create_countdown(sessions: sessionmaker[Session], *, incident_id: str, finding_id: str,
                     due_at: datetime) -> Countdown | None:
    """Record a pending countdown; None if the incident already had one."""
    countdown = Countdown(incident_id=incident_id, finding_id=finding_id, due_at=due_at,
                          state=CountdownState.PENDING.value)
    try:
        with sessions.begin() as session:
            session.add(countdown)
    except IntegrityError:
        return None
    return countdown


def get_countdown(sessions: sessionmaker[Session], *, incident_id: str) -> Countdown | None:
    """Return the incident's countdown, or None."""
    with sessions() as session:
        return session.get(Countdown, incident_id)


def set_message(sessions: sessionmaker[Session], *, incident_id: str, channel_id: str,
                message_ts: str) -> None:
    """Remember where the countdown's message is (to replace it once decided)."""
    with sessions.begin() as session:
        session.execute(update(Countdown).where(Countdown.incident_id == incident_id)
                        .values(channel_id=channel_id, message_ts=message_ts))


def decide(sessions: sessionmaker[Session], *, incident_id: str, state: CountdownState,
           by: str) -> Countdown | None:
    """Move a pending countdown to `state`; return it, or None if it was not pending."""
    with sessions.begin() as session:
        done = session.execute(
            update(Countdown)
            .where(Countdown.incident_id == incident_id,
                   Countdown.state == CountdownState.PENDING.value)
            .values(state=state.value, decided_by=by, decided_at=utcnow()))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(Countdown, incident_id)


def pending(sessions: sessionmaker[Session]) -> list[Countdown]:
    """Return the countdowns still waiting (to resume them after a restart)."""
    with sessions() as session:
        stmt = select(Countdown).where(Countdown.state == CountdownState.PENDING.value)
        return list(session.execute(stmt).scalars())
