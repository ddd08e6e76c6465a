"""The engine: opens incidents, claims a step atomically, runs it, records and reports it."""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from aws.errors import AwsError
from aws.instances import InstanceSummary, summarize
from aws.session import AwsFactory, CallLog, CallRecord
from playbooks.catalog import Playbook
from playbooks.model import IncidentView, Notifier, Step, StepContext, StepOutcome
from storage import audit, incidents, steps
from storage.incidents import IncidentExists
from storage.models import ENDED_STATUSES, Incident, StepRun, StepState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    incident: Incident
    posted: bool


@dataclass(frozen=True)
class AlreadyOpen:
    incident: Incident


@dataclass(frozen=True)
class OpenFailed:
    message: str


@dataclass(frozen=True)
class Refused:
    """The step was not run; `reason` says why, `run` is the live run in the way if any."""

    reason: str
    run: StepRun | None = None


@dataclass(frozen=True)
class Ran:
    run: StepRun
    outcome: StepOutcome


def calls_for_audit(records: list[CallRecord]) -> dict[str, object]:
    """Return the AWS calls of a piece of work in the form the audit trail keeps."""
    return {
        "aws_calls": [
            {
                "call": f"{r.service}:{r.operation}",
                "params": r.params,
                "request_id": r.request_id,
                "ok": r.ok,
                "error": r.error_code,
                "ms": round(r.seconds * 1000),
            }
            for r in records
        ]
    }


class Engine:
    """Runs the playbook for incidents; every decision and result goes to the audit trail."""

    def __init__(self, *, sessions: sessionmaker[Session], aws: AwsFactory,
                 notifier: Notifier, playbook: Playbook) -> None:
        self.sessions = sessions
        self.aws = aws
        self.notifier = notifier
        self.playbook = playbook
        # Root messages are re-rendered from the database under a per-incident lock, so a
        # late "running" update can never overwrite a newer result.
        self._root_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="root-update")

    # --- views -------------------------------------------------------------------------
    def view(self, incident_id: str) -> IncidentView | None:
        """Return the incident with its latest step runs, or None."""
        incident = incidents.get_incident(self.sessions, incident_id=incident_id)
        if incident is None:
            return None
        runs = steps.latest_runs(self.sessions, incident_id=incident_id)
        return IncidentView(incident=incident, steps=self.playbook.steps, runs=runs)

    def open_incidents(self) -> list[Incident]:
        """Return the incidents that are not closed."""
        return incidents.open_incidents(self.sessions)

    def record(self, *, action: str, actor: str, outcome: str, detail: str = "",
               incident_id: str | None = None, step_id: str | None = None) -> None:
        """Write an audit row for something decided outside the engine (a refusal)."""
        audit.append(self.sessions, action=action, actor=actor, outcome=outcome,
                     detail=detail, incident_id=incident_id, step_id=step_id)

    # --- opening -----------------------------------------------------------------------
    def open_incident(self, *, instance_id: str, actor: str, reason: str,
                      region: str | None = None) -> Opened | AlreadyOpen | OpenFailed:
        """Look the instance up and open an incident for it, or point at the live one."""
        aws = self.aws.for_region(region)
        existing = incidents.live_incident_for_instance(self.sessions, instance_id=instance_id)
        if existing is not None and existing.region == aws.region:
            return self._already_open(existing, actor)
        call_log = CallLog()
        params = {"instance_id": instance_id, "region": aws.region, "reason": reason}
        try:
            summary = summarize(aws, call_log, instance_id)
        except AwsError as exc:
            audit.append(self.sessions, action="incident.open", actor=actor, outcome="failed",
                         params={**params, **calls_for_audit(call_log.records)},
                         request_ids=call_log.request_ids(), detail=str(exc))
            return OpenFailed(_open_error(instance_id, aws.region, exc))
        try:
            incident = incidents.create_incident(
                self.sessions, instance_id=instance_id, account_id=summary.account_id,
                region=summary.region, vpc_id=summary.vpc_id or None, opened_by=actor,
                reason=reason, instance=summary.to_dict(),
            )
        except IncidentExists as exc:
            return self._already_open(exc.existing, actor)
        audit.append(self.sessions, action="incident.open", actor=actor, outcome="succeeded",
                     incident_id=incident.id,
                     params={**params, **calls_for_audit(call_log.records)},
                     request_ids=call_log.request_ids(), detail=_summary_line(summary))
        posted = self._post_root(incident)
        return Opened(incident=self._reload(incident), posted=posted)

    def _already_open(self, incident: Incident, actor: str) -> AlreadyOpen:
        audit.append(self.sessions, action="incident.open", actor=actor, outcome="refused",
                     incident_id=incident.id, detail="instance already has a live incident")
        if incident.root_ts is None:  # the earlier post to Slack failed: try again
            self._post_root(incident)
            incident = self._reload(incident)
        return AlreadyOpen(incident)

    def _post_root(self, incident: Incident) -> bool:
        view = self.view(incident.id)
        assert view is not None
        where = self.notifier.post_root(view)
        if where is None:
            audit.append(self.sessions, action="slack.post_root", actor="irbot",
                         outcome="failed", incident_id=incident.id,
                         detail="the root message could not be posted")
            return False
        incidents.set_thread(self.sessions, incident_id=incident.id, channel_id=where[0],
                             root_ts=where[1])
        return True

    def _reload(self, incident: Incident) -> Incident:
        fresh = incidents.get_incident(self.sessions, incident_id=incident.id)
        return fresh if fresh is not None else incident

    # --- steps -------------------------------------------------------------------------
    def request_step(self, *, incident_id: str, step_id: str, actor: str) -> Ran | Refused:
        """Claim the step for this incident and run it; refuse if it is live or done."""
        incident = incidents.get_incident(self.sessions, incident_id=incident_id)
        step = self.playbook.get(step_id)
        if incident is None or step is None:
            what = f"incident {incident_id}" if incident is None else f"step {step_id!r}"
            self.record(action="step.request", actor=actor, outcome="rejected",
                        incident_id=incident_id if incident else None, step_id=step_id,
                        detail=f"unknown {what}")
            return Refused(f"There is no {what}.")
        if incident.status in ENDED_STATUSES:
            self.record(action="step.request", actor=actor, outcome="refused",
                        incident_id=incident_id, step_id=step_id,
                        detail=f"incident is {incident.status}")
            return Refused(f"{incident.id} is {incident.status}: no more steps run for it.")
        audit.append(self.sessions, action="step.request", actor=actor, outcome="accepted",
                     incident_id=incident_id, step_id=step_id)
        claim = steps.claim_step(self.sessions, incident_id=incident_id, step_id=step_id,
                                 requested_by=actor)
        if not claim.won:
            self.record(action="step.request", actor=actor, outcome="refused",
                        incident_id=incident_id, step_id=step_id,
                        detail=f"already {claim.run.state} (run {claim.run.id})")
            return Refused(_busy_reason(step, claim.run), claim.run)
        return Ran(claim.run, self._run(incident, step, claim.run, actor))

    def _run(self, incident: Incident, step: Step, run: StepRun, actor: str) -> StepOutcome:
        audit.append(self.sessions, action="step.start", actor=actor, outcome="started",
                     incident_id=incident.id, step_id=step.id,
                     params={"instance_id": incident.instance_id, "region": incident.region})
        # Show "Isolating… (by @x)" without making containment wait for Slack.
        self._background.submit(self.refresh_root, incident.id)
        aws = self.aws.for_region(incident.region)
        call_log = CallLog()
        try:
            outcome = step.run(StepContext(incident=incident, aws=aws, log=call_log,
                                           actor=actor))
        except AwsError as exc:
            outcome = StepOutcome(ok=False, headline=f"{step.label} failed: {exc}",
                                  lines=["Nothing after the failing call was attempted; "
                                         "the AWS calls made are in the audit trail."],
                                  result={"error": str(exc), "code": exc.code})
        except Exception as exc:  # the audit trail and the thread must hear of any failure
            ref = uuid.uuid4().hex[:8]
            log.exception("step %s of %s crashed (ref %s)", step.id, incident.id, ref)
            outcome = StepOutcome(ok=False, headline=f"{step.label} failed unexpectedly "
                                  f"(ref {ref}): {type(exc).__name__}", result={"ref": ref})
        finished = steps.finish_run(
            self.sessions, run_id=run.id, succeeded=outcome.ok,
            result={"headline": outcome.headline, **outcome.result,
                    **calls_for_audit(call_log.records)},
            error=None if outcome.ok else outcome.headline,
        )
        audit.append(self.sessions, action="step.result",
                     actor=actor, outcome="succeeded" if outcome.ok else "failed",
                     incident_id=incident.id, step_id=step.id,
                     params=calls_for_audit(call_log.records),
                     request_ids=call_log.request_ids(), detail=outcome.headline)
        if outcome.ok and outcome.incident_status:
            incidents.set_status(self.sessions, incident_id=incident.id,
                                 status=outcome.incident_status)
        view = self.view(incident.id)
        if view is not None:
            self.notifier.post_step_result(view, step, finished, outcome)
        self.refresh_root(incident.id)
        return outcome

    def refresh_root(self, incident_id: str) -> None:
        """Re-render the incident's root message from its current state."""
        with self._locks_guard:
            lock = self._root_locks.setdefault(incident_id, threading.Lock())
        with lock:
            view = self.view(incident_id)
            if view is not None:
                self.notifier.update_root(view)


def _busy_reason(step: Step, run: StepRun) -> str:
    who = f"<@{run.requested_by}>"
    if run.state == StepState.SUCCEEDED.value:
        return f"{step.label} is already done: by {who} at {_when(run.finished_at)}."
    if run.state == StepState.RUNNING.value:
        return f"{step.label} is already running: started by {who} at {_when(run.started_at)}."
    return f"{step.label} is already {run.state.replace('_', ' ')}: asked by {who}."


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "an unknown time"


def _summary_line(summary: InstanceSummary) -> str:
    return (f"{summary.instance_id} ({summary.name or 'no Name tag'}), {summary.instance_type}, "
            f"{summary.state}, {summary.vpc_id}")


def _open_error(instance_id: str, region: str, exc: AwsError) -> str:
    from aws.errors import AccessDenied, Malformed, NotFound, Unavailable

    if isinstance(exc, Malformed):
        return f"`{instance_id}` is not a valid instance id (they look like i-0123456789abcdef0)."
    if isinstance(exc, NotFound):
        return f"No instance `{instance_id}` in {region} for this account. Nothing was opened."
    if isinstance(exc, AccessDenied):
        return f"AWS refused the lookup of `{instance_id}`: {exc}. Nothing was opened."
    if isinstance(exc, Unavailable):
        return f"AWS is not reachable: {exc}. Nothing was opened."
    return f"AWS error while looking up `{instance_id}`: {exc}. Nothing was opened."
