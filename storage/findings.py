"""Findings: upserted by GuardDuty's id (it re-sends a finding with a higher count)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Finding


def upsert_finding(sessions: sessionmaker[Session], *, finding_id: str, type: str,
                   severity: float, count: int, first_seen: datetime | None,
                   last_seen: datetime | None,
                   raw: dict[str, Any]) -> tuple[Finding, int | None]:
    """Insert the finding or update its count and times; return it and the count it had
    before (None when it is new)."""
    try:
        with sessions.begin() as session:
            session.add(Finding(id=finding_id, type=type, severity=severity, count=count,
                                first_seen=first_seen, last_seen=last_seen, raw=raw))
        before: int | None = None
    except IntegrityError:
        with sessions.begin() as session:
            before = session.execute(select(Finding.count).where(
                Finding.id == finding_id).with_for_update()).scalar_one()
            session.execute(update(Finding).where(Finding.id == finding_id).values(
                severity=severity, count=max(count, before), last_seen=last_seen, raw=raw))
    with sessions() as session:
        row = session.execute(select(Finding).where(Finding.id == finding_id)).scalar_one()
    return row, before


def link(sessions: sessionmaker[Session], *, finding_id: str, incident_id: str) -> None:
    """Attach the finding to its incident."""
    with sessions.begin() as session:
        session.execute(update(Finding).where(Finding.id == finding_id).values(
            incident_id=incident_id))


def findings_of(sessions: sessionmaker[Session], *, incident_id: str) -> list[Finding]:
    """Return the incident's findings, the most severe first."""
    with sessions() as session:
        stmt = select(Finding).where(Finding.incident_id == incident_id)
        return list(session.execute(stmt.order_by(Finding.severity.desc(),
                                                  Finding.id)).scalars())
