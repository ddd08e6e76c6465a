"""The post-incident report: one Markdown document from the database, for the review.

Everything in it comes from stored rows (the incident, its audit trail, step runs,
findings and evidence), so the report of a closed incident never changes and can be
checked against `irbot audit show`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from playbooks.catalog import Playbook
from playbooks.undo import changes_of
from storage import audit, evidence, findings, incidents, steps
from storage.approvals import aware
from storage.models import AuditEvent, Incident, StepRun, StepState

MACHINE = frozenset({"irbot", "guardduty", "policy", "sns", "eventbridge"})


@dataclass(frozen=True)
class Durations:
    """How long containment and termination took, from when irbot first knew."""

    start: datetime
    start_label: str
    contained: datetime | None
    terminated: datetime | None

    def contain_text(self) -> str:
        """Return the time to contain, said plainly."""
        if self.contained is None:
            return "not contained by irbot (isolation never verified)"
        return duration_text((self.contained - self.start).total_seconds())

    def terminate_text(self) -> str:
        """Return the time to terminate, said plainly."""
        if self.terminated is None:
            return "not terminated by irbot"
        return duration_text((self.terminated - self.start).total_seconds())


def duration_text(seconds: float) -> str:
    """Format a duration as `2 min 03 s`, `1 h 02 min 03 s` or `3 d 01 h 02 min 03 s`."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min {secs:02d} s"
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def isolation_verified(run: StepRun | None) -> bool:
    """True for a successful Isolate run whose every interface was read back quarantined."""
    if run is None or run.state != StepState.SUCCEEDED.value or run.finished_at is None:
        return False
    interfaces = run.result.get("interfaces") if run.result else None
    if not isinstance(interfaces, list) or not interfaces:
        return True  # results from before verification was stored: trust the success
    return all(isinstance(i, dict) and i.get("verified") for i in interfaces)


def durations(incident: Incident, runs: dict[str, StepRun],
              events: Sequence[AuditEvent]) -> Durations:
    """Measure from the first finding irbot received, or the opening, whichever came first."""
    start, label = aware(incident.opened_at), "the incident was opened"
    linked = [aware(e.at) for e in events if e.action == "finding.linked"]
    if linked and min(linked) < start:
        start, label = min(linked), "the first finding arrived"
    isolate, terminate = runs.get("isolate"), runs.get("terminate")
    contained = aware(isolate.finished_at) if isolate is not None and isolation_verified(
        isolate) and isolate.finished_at is not None else None
    ended = (terminate is not None and terminate.state == StepState.SUCCEEDED.value
             and terminate.finished_at is not None)
    terminated = aware(terminate.finished_at) if ended and terminate is not None and \
        terminate.finished_at is not None else None
    return Durations(start=start, start_label=label, contained=contained, terminated=terminated)


def _utc(value: datetime | None) -> str:
    return aware(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _cell(text: object) -> str:
    """Make text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or "—"


def _who(user: str | None) -> str:
    if not user:
        return "—"
    return user if user in MACHINE else f"@{user}"


def _timeline_row(event: AuditEvent) -> str:
    what = event.action + (f" `{event.step_id}`" if event.step_id else "")
    approver = (f" (approved by {_who(event.approver)})"
                if event.approver and event.approver != event.actor else "")
    detail = re.sub(r"^:[a-z_]+:\s*", "", event.detail)  # a leading Slack emoji code
    detail = detail[:300] + ("…" if len(detail) > 300 else "")
    return (f"| {_utc(event.at)} | {_cell(_who(event.actor) + approver)} | {_cell(what)} | "
            f"{_cell(event.outcome)} | {_cell(detail)} |")


def build_report(sessions: sessionmaker[Session], playbook: Playbook,
                 incident_id: str) -> str | None:
    """Return the incident's report as Markdown, or None if there is no such incident."""
    incident = incidents.get_incident(sessions, incident_id=incident_id)
    if incident is None:
        return None
    events = audit.events_for(sessions, incident_id=incident_id)
    runs = steps.latest_runs(sessions, incident_id=incident_id)
    found = findings.findings_of(sessions, incident_id=incident_id)
    kept = evidence.evidence_for(sessions, incident_id=incident_id)
    times = durations(incident, runs, events)
    info = incident.instance or {}
    out = [f"# Post-incident report: {incident.id}", ""]
    out += ["## Summary", "",
            f"- **Instance:** `{incident.instance_id}` {info.get('name', '')}".rstrip(),
            f"- **Account / region:** {incident.account_id} / {incident.region}",
            f"- **Opened:** {_utc(incident.opened_at)} by {_who(incident.opened_by)}"
            + (f": {incident.reason}" if incident.reason else ""),
            f"- **Status:** {incident.status}"
            + (f", closed {_utc(incident.closed_at)}" if incident.closed_at else ""),
            f"- **Time to contain** (from when {times.start_label}, {_utc(times.start)}, to "
            f"isolation verified): {times.contain_text()}",
            f"- **Time to terminate:** {times.terminate_text()}"]
    if found:
        seen = [aware(f.first_seen) for f in found if f.first_seen is not None]
        if seen:
            exposed = (f" ({duration_text((times.contained - min(seen)).total_seconds())} "
                       "before isolation was verified)" if times.contained else "")
            out.append(f"- **GuardDuty first saw the activity:** {_utc(min(seen))}{exposed}")
    out += ["", "### Steps", "", "| step | state | asked by | approved by | finished | result |",
            "|---|---|---|---|---|---|"]
    for step in (*playbook.steps, *playbook.offered):
        run = runs.get(step.id)
        if run is None:
            if step in playbook.steps:
                out.append(f"| {step.label} | not run | — | — | — | — |")
            continue
        headline = run.error or str((run.result or {}).get("headline", ""))
        out.append(f"| {step.label} | {run.state} | {_who(run.requested_by)} | "
                   f"{_who(run.approved_by)} | {_utc(run.finished_at)} | {_cell(headline)} |")
    if found:
        out += ["", "## Findings", "", "| type | severity | count | first seen | last seen | "
                "title |", "|---|---|---|---|---|---|"]
        for f in found:
            out.append(f"| `{_cell(f.type)}` | {f.severity:g} | {f.count} | "
                       f"{_utc(f.first_seen)} | {_utc(f.last_seen)} | "
                       f"{_cell(f.raw.get('title', ''))} |")
    out += ["", "## Timeline (UTC, from the audit trail)", "",
            "| time | who | what | outcome | detail |", "|---|---|---|---|---|"]
    out += [_timeline_row(e) for e in events]
    out += ["", "## Evidence manifest", ""]
    if kept:
        out += ["| kind | SHA-256 | bytes | where | collected |", "|---|---|---|---|---|"]
        out += [f"| {_cell(e.kind)} | `{e.sha256}` | {e.size} | {_cell(e.location)} | "
                f"{_utc(e.collected_at)} by {_cell(_who(e.collected_by))} |" for e in kept]
    else:
        out.append("No evidence files were captured.")
    snapshot_run = runs.get("snapshot")
    snapshot_changes = changes_of("snapshot", snapshot_run.result or {}, incident.instance_id) \
        if snapshot_run is not None else []
    if snapshot_changes:
        out += ["", "EBS snapshots (in the incident's account and region):", ""]
        out += [f"- {c.what}" for c in snapshot_changes]
    out += ["", "## AWS resources changed, and how to undo them", ""]
    changed = [(step.label, change) for step in (*playbook.steps, *playbook.offered)
               if (run := runs.get(step.id)) is not None
               and run.state == StepState.SUCCEEDED.value
               for change in changes_of(step.id, run.result or {}, incident.instance_id)]
    if changed:
        out += ["| step | change | undo |", "|---|---|---|"]
        out += [f"| {label} | {_cell(c.what)} | {_cell(c.undo)} |" for label, c in changed]
    else:
        out.append("irbot changed nothing in AWS for this incident.")
    out += ["", "## Who took part", ""]
    out += _participants(events)
    out += ["", f"_Generated by irbot from {len(events)} audit records; `irbot audit verify` "
            "checks their hash chain._", ""]
    return "\n".join(out)


def _participants(events: Sequence[AuditEvent]) -> list[str]:
    roles: dict[str, list[str]] = {}

    def add(user: str | None, role: str) -> None:
        if user and role not in roles.setdefault(user, []):
            roles[user].append(role)

    for e in events:
        if e.action == "incident.open" and e.outcome == "succeeded":
            add(e.actor, "opened the incident")
        elif e.action == "step.request" and e.outcome == "accepted" and e.step_id:
            add(e.actor, f"asked for {e.step_id}")
        elif e.action == "approval.approved" and e.step_id:
            add(e.actor, f"approved {e.step_id}")
        elif e.action == "approval.denied" and e.step_id:
            add(e.actor, f"denied {e.step_id}")
        elif e.action == "policy.cancel" and e.outcome == "cancelled":
            add(e.actor, "cancelled automatic isolation")
        elif e.action == "incident.close" and e.outcome == "closed":
            add(e.actor, "closed the incident")
        if e.approver:
            add(e.approver, f"approved {e.step_id}" if e.step_id else "approved")
    if not roles:
        return ["Nobody acted on this incident."]
    return [f"- {_who(user)}: {', '.join(done)}" for user, done in roles.items()]
