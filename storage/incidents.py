"""Incident records: create with a human id, find the live one for an instance, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import ENDED_STATUSES, Counter, Incident, StepRun, utcnow


class IncidentExists(Exception):
    """The instance already has a live incident."""

    def __init__(self, existing: Incident) -> None:
        super().__init__(f"{existing.instance_id} already has incident {existing.id}")
        self.existing = existing


def _next_number(session: Session, name: str) -> int:
    bumped = session.execute(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(insert(Counter).values(name=name, value=1))
        return 1
    return session.execute(select(Counter.value).where(Counter.name == name)).scalar_one()


def create_incident(
    sessions: sessionmaker[Session],
    *,
    instance_id: str,
    account_id: str,
    region: str,
    vpc_id: str | None,
    opened_by: str,
    reason: str,
    instance: dict[str, Any],
    now: datetime | None = None,
) -> Incident:
    """Create an incident numbered IR-YYYY-NNNN; raise IncidentExists if one is live."""
    now = now or utcnow()
    for _attempt in range(5):
        try:
            with sessions.begin() as session:
                number = _next_number(session, f"incident-{now.year}")
                incident = Incident(
                    id=f"IR-{now.year}-{number:04d}",
                    instance_id=instance_id,
                    account_id=account_id,
                    region=region,
                    vpc_id=vpc_id,
                    opened_by=opened_by,
                    reason=reason,
                    opened_at=now,
                    instance=instance,
                )
                session.add(incident)
            return incident
        except IntegrityError:
            existing = live_incident_for(
                sessions, instance_id=instance_id, account_id=account_id, region=region
            )
            if existing is not None:
                raise IncidentExists(existing) from None
            # Lost a race for the counter row's first insert: try again.
    raise RuntimeError("could not allocate an incident id")


def live_incident_for(
    sessions: sessionmaker[Session], *, instance_id: str, account_id: str, region: str
) -> Incident | None:
    """Return the instance's incident that is not closed, if any."""
    with sessions() as session:
        stmt = select(Incident).where(
            Incident.instance_id == instance_id,
            Incident.account_id == account_id,
            Incident.region == region,
            Incident.status.not_in(ENDED_STATUSES),
        )
        return session.execute(stmt).scalar_one_or_none()


def live_incident_for_instance(
    sessions: sessionmaker[Session], *, instance_id: str
) -> Incident | None:
    """Return a live incident for the instance id in any account or region."""
    with sessions() as session:
        stmt = select(Incident).where(
            Incident.instance_id == instance_id, Incident.status.not_in(ENDED_STATUSES)
        )
        return session.execute(stmt.limit(1)).scalar_one_or_none()


def get_incident(sessions: sessionmaker[Session], *, incident_id: str) -> Incident | None:
    """Return the incident with this id, or None."""
    with sessions() as session:
        return session.get(Incident, incident_id)


def open_incidents(sessions: sessionmaker[Session]) -> list[Incident]:
    """Return every incident that is not closed, newest first."""
    with sessions() as session:
        stmt = select(Incident).where(Incident.status.not_in(ENDED_STATUSES))
        return list(session.execute(stmt.order_by(Incident.opened_at.desc())).scalars())


def set_thread(
    sessions: sessionmaker[Session], *, incident_id: str, channel_id: str, root_ts: str
) -> None:
    """Record where the incident's root message lives."""
    with sessions.begin() as session:
        session.execute(
            update(Incident)
            .where(Incident.id == incident_id)
            .values(channel_id=channel_id, root_ts=root_ts)
        )


def set_status(sessions: sessionmaker[Session], *, incident_id: str, status: str) -> None:
    """Move the incident to `status` (closing it stamps closed_at)."""
    values: dict[str, Any] = {"status": status}
    if status in ENDED_STATUSES:
        values["closed_at"] = utcnow()
    with sessions.begin() as session:
        session.execute(update(Incident).where(Incident.id == incident_id).values(**values))


def set_instance_state(sessions: sessionmaker[Session], *, incident_id: str,
                       state: str) -> None:
    """Record the instance's state as a step last read it back (its summary is kept)."""
    with sessions.begin() as session:
        incident = session.get(Incident, incident_id, with_for_update=True)
        if incident is not None:
            incident.instance = {**(incident.instance or {}), "state": state}


def open_incidents_of(sessions: sessionmaker[Session], *, user: str) -> list[Incident]:
    """Return the open incidents the user opened or requested or approved a step in."""
    with sessions() as session:
        took_part = select(StepRun.incident_id).where(
            or_(StepRun.requested_by == user, StepRun.approved_by == user))
        stmt = select(Incident).where(
            Incident.status.not_in(ENDED_STATUSES),
            or_(Incident.opened_by == user, Incident.id.in_(took_part)),
        )
        return list(session.execute(stmt.order_by(Incident.opened_at.desc())).scalars())
