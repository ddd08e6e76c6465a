"""Step runs: the atomic claim that makes a step run once, and its state changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import BUSY_STATES, StepRun, StepState, utcnow


@dataclass(frozen=True)
class Claim:
    """The outcome of asking to run a step: either our new run or the live one in the way."""

    run: StepRun
    won: bool


def claim_step(
    sessions: sessionmaker[Session],
    *,
    incident_id: str,
    step_id: str,
    requested_by: str,
    state: StepState = StepState.RUNNING,
    stale_after: timedelta = timedelta(minutes=30),
    once_only: bool = True,
    params: dict[str, Any] | None = None,
) -> Claim:
    """Insert a live run for the step, or return the live run that already exists.

    The partial unique index on live runs decides: two processes clicking at once get one
    winner, whatever their clocks or memory say. A run still "running" after `stale_after`
    belonged to a process that died: it is marked interrupted and the claim is retried.
    """
    now = utcnow()
    run = StepRun(
        incident_id=incident_id,
        step_id=step_id,
        state=state.value,
        requested_by=requested_by,
        requested_at=now,
        started_at=now if state is StepState.RUNNING else None,
        once_only=once_only,
        params=params or {},
    )
    try:
        with sessions.begin() as session:
            session.add(run)
        return Claim(run=run, won=True)
    except IntegrityError:
        existing = live_run(sessions, incident_id=incident_id, step_id=step_id)
        retry = existing is None  # the live run ended between our insert and our read
        if existing is not None and _interrupt_if_stale(sessions, existing, stale_after):
            retry = True
        if retry:
            return claim_step(
                sessions,
                incident_id=incident_id,
                step_id=step_id,
                requested_by=requested_by,
                state=state,
                stale_after=stale_after,
                once_only=once_only,
                params=params,
            )
        assert existing is not None
        return Claim(run=existing, won=False)


def _interrupt_if_stale(
    sessions: sessionmaker[Session], run: StepRun, stale_after: timedelta
) -> bool:
    started = run.started_at
    if run.state != StepState.RUNNING.value or started is None:
        return False
    if started.tzinfo is None:  # SQLite hands back naive UTC
        started = started.replace(tzinfo=utcnow().tzinfo)
    if utcnow() - started < stale_after:
        return False
    with sessions.begin() as session:
        changed = session.execute(
            update(StepRun)
            .where(StepRun.id == run.id, StepRun.state == StepState.RUNNING.value)
            .values(state=StepState.INTERRUPTED.value, finished_at=utcnow(),
                    error="interrupted: the process running it stopped")
        )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def live_run(sessions: sessionmaker[Session], *, incident_id: str, step_id: str) -> StepRun | None:
    """Return the step's run that is requested, waiting, running or succeeded."""
    with sessions() as session:
        stmt = select(StepRun).where(
            StepRun.incident_id == incident_id,
            StepRun.step_id == step_id,
            or_(StepRun.state.in_(BUSY_STATES),
                (StepRun.state == StepState.SUCCEEDED.value) & StepRun.once_only),
        )
        return session.execute(stmt).scalars().first()


def finish_run(
    sessions: sessionmaker[Session],
    *,
    run_id: int,
    succeeded: bool,
    result: dict[str, Any],
    error: str | None = None,
) -> StepRun:
    """Record a run's result and final state; return the updated run."""
    state = StepState.SUCCEEDED if succeeded else StepState.FAILED
    with sessions.begin() as session:
        session.execute(
            update(StepRun)
            .where(StepRun.id == run_id)
            .values(state=state.value, finished_at=utcnow(), result=result, error=error)
        )
        return session.execute(select(StepRun).where(StepRun.id == run_id)).scalar_one()


def update_result(sessions: sessionmaker[Session], *, run_id: int,
                  result: dict[str, Any]) -> None:
    """Replace a finished run's result (background tracking adds to it)."""
    with sessions.begin() as session:
        session.execute(update(StepRun).where(StepRun.id == run_id).values(result=result))


def get_run(sessions: sessionmaker[Session], *, run_id: int) -> StepRun | None:
    """Return the step run, or None."""
    with sessions() as session:
        return session.get(StepRun, run_id)


def runs_for(sessions: sessionmaker[Session], *, incident_id: str) -> list[StepRun]:
    """Return every run of the incident's steps, oldest first."""
    with sessions() as session:
        stmt = select(StepRun).where(StepRun.incident_id == incident_id)
        return list(session.execute(stmt.order_by(StepRun.id)).scalars())


def latest_runs(sessions: sessionmaker[Session], *, incident_id: str) -> dict[str, StepRun]:
    """Return the newest run of each step of the incident, by step id."""
    latest: dict[str, StepRun] = {}
    for run in runs_for(sessions, incident_id=incident_id):
        latest[run.step_id] = run
    return latest
