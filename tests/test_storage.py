"""Storage on SQLite and PostgreSQL: incident ids, one live incident per instance, the
once-only claim under concurrency, and the audit chain's tamper detection."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from storage import audit, incidents, steps
from storage.db import create_schema, make_engine, session_factory
from storage.incidents import IncidentExists
from storage.models import StepRun, StepState


def _incident(sessions: sessionmaker[Session], instance_id: str = "i-0123456789abcdef0",
              now: datetime | None = None) -> str:
    return incidents.create_incident(
        sessions, instance_id=instance_id, account_id="123456789012", region="us-east-1",
        vpc_id="vpc-1", opened_by="U0ALICE", reason="test", instance={}, now=now).id


def test_incident_ids_count_per_year(sessions: sessionmaker[Session]) -> None:
    first = _incident(sessions, "i-00000001", now=datetime(2026, 12, 31, tzinfo=UTC))
    second = _incident(sessions, "i-00000002", now=datetime(2026, 12, 31, tzinfo=UTC))
    third = _incident(sessions, "i-00000003", now=datetime(2027, 1, 1, tzinfo=UTC))
    assert (first, second, third) == ("IR-2026-0001", "IR-2026-0002", "IR-2027-0001")


def test_one_live_incident_per_instance(sessions: sessionmaker[Session]) -> None:
    first = _incident(sessions)
    with pytest.raises(IncidentExists) as raised:
        _incident(sessions)
    assert raised.value.existing.id == first
    incidents.set_status(sessions, incident_id=first, status="closed")
    assert _incident(sessions) != first  # a closed incident does not block a new one


def test_concurrent_opens_make_one_incident(sessions: sessionmaker[Session]) -> None:
    def attempt(_: int) -> str:
        try:
            return _incident(sessions)
        except IncidentExists as exc:
            return "exists:" + exc.existing.id

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    winners = [r for r in results if not r.startswith("exists:")]
    assert len(winners) == 1
    assert all(r == f"exists:{winners[0]}" for r in results if r not in winners)


def test_claim_is_once_only_across_threads(sessions: sessionmaker[Session]) -> None:
    incident_id = _incident(sessions)
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda u: steps.claim_step(
            sessions, incident_id=incident_id, step_id="isolate", requested_by=f"U{u}"),
            range(8)))
    assert sum(c.won for c in claims) == 1
    winner = next(c.run for c in claims if c.won)
    assert all(c.run.id == winner.id for c in claims)


def _claim_in_process(url: str, incident_id: str, user: str) -> bool:
    engine = make_engine(url)
    try:
        return steps.claim_step(session_factory(engine), incident_id=incident_id,
                                step_id="isolate", requested_by=user).won
    finally:
        engine.dispose()


def test_claim_is_once_only_across_processes(database_url: str,
                                             sessions: sessionmaker[Session]) -> None:
    incident_id = _incident(sessions)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        won = pool.starmap(_claim_in_process,
                           [(database_url, incident_id, f"U{i}") for i in range(4)])
    assert sorted(won) == [False, False, False, True]


def test_failed_run_can_be_retried_but_succeeded_cannot(sessions: sessionmaker[Session]) -> None:
    incident_id = _incident(sessions)
    first = steps.claim_step(sessions, incident_id=incident_id, step_id="isolate",
                             requested_by="U0ALICE")
    steps.finish_run(sessions, run_id=first.run.id, succeeded=False, result={})
    retry = steps.claim_step(sessions, incident_id=incident_id, step_id="isolate",
                             requested_by="U0BOB")
    assert retry.won
    steps.finish_run(sessions, run_id=retry.run.id, succeeded=True, result={})
    again = steps.claim_step(sessions, incident_id=incident_id, step_id="isolate",
                             requested_by="U0ALICE")
    assert not again.won and again.run.state == StepState.SUCCEEDED.value


def test_stale_running_claim_is_interrupted(sessions: sessionmaker[Session]) -> None:
    incident_id = _incident(sessions)
    first = steps.claim_step(sessions, incident_id=incident_id, step_id="isolate",
                             requested_by="U0ALICE")
    with sessions.begin() as session:
        session.execute(update(StepRun).where(StepRun.id == first.run.id).values(
            started_at=datetime.now(UTC) - timedelta(hours=2)))
    retry = steps.claim_step(sessions, incident_id=incident_id, step_id="isolate",
                             requested_by="U0BOB")
    assert retry.won
    states = {r.id: r.state for r in steps.runs_for(sessions, incident_id=incident_id)}
    assert states[first.run.id] == StepState.INTERRUPTED.value


def test_audit_chain_verifies_and_names_the_first_altered_row(
        sessions: sessionmaker[Session]) -> None:
    for n in range(5):
        audit.append(sessions, action="step.start", actor="U0ALICE", outcome="started",
                     incident_id="IR-2026-0001", params={"n": n}, request_ids=[f"req-{n}"])
    assert audit.verify(sessions) == audit.ChainReport(True, 5)
    with sessions.begin() as session:
        session.execute(text("UPDATE audit_events SET actor = 'U0MALLORY' WHERE seq = 3"))
    report = audit.verify(sessions)
    assert not report.ok and report.first_broken_seq == 3 and "altered" in report.problem


def test_audit_chain_detects_deleted_rows(sessions: sessionmaker[Session]) -> None:
    for n in range(4):
        audit.append(sessions, action="x", actor="U1", outcome="ok", params={"n": n})
    with sessions.begin() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    assert audit.verify(sessions).first_broken_seq == 2
    with sessions.begin() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq >= 2"))
    report = audit.verify(sessions)
    assert not report.ok and "removed" in report.problem


def test_concurrent_appends_keep_one_chain(sessions: sessionmaker[Session]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: audit.append(sessions, action="x", actor=f"U{n}",
                                             outcome="ok"), range(40)))
    report = audit.verify(sessions)
    assert report.ok and report.rows == 40


def test_schema_creation_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    create_schema(engine)
    engine.dispose()
