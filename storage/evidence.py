"""Evidence records: what was collected, its hash and size, where it is kept."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Evidence, utcnow


def add_evidence(sessions: sessionmaker[Session], *, incident_id: str, kind: str,
                 sha256: str, size: int, location: str, collected_by: str) -> Evidence:
    """Record one item of evidence."""
    item = Evidence(incident_id=incident_id, kind=kind, sha256=sha256, size=size,
                    location=location, collected_by=collected_by, collected_at=utcnow())
    with sessions.begin() as session:
        session.add(item)
    return item


def evidence_for(sessions: sessionmaker[Session], *, incident_id: str) -> list[Evidence]:
    """Return the incident's evidence, oldest first."""
    with sessions() as session:
        stmt = select(Evidence).where(Evidence.incident_id == incident_id)
        return list(session.execute(stmt.order_by(Evidence.id)).scalars())
