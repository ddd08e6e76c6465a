"""The engine: opens incidents, claims a step atomically, runs it, records and reports it."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from aws.errors import AwsError
from aws.evidence_store import put_evidence
from aws.instances import InstanceSummary, summarize
from aws.session import Aws, AwsFactory, CallLog, CallRecord, Identity, NoRole
from playbooks.catalog import Playbook
from playbooks.model import (
    Access,
    Artifact,
    Facts,
    FollowUp,
    IncidentView,
    Notifier,
    Question,
    Step,
    StepContext,
    StepOutcome,
)
from playbooks.report import build_report, durations
from storage import approvals, audit, evidence, findings, incidents, steps
from storage.approvals import aware
from storage.incidents import IncidentExists
from storage.models import (
    ENDED_STATUSES,
    Approval,
    ApprovalState,
    Incident,
    IncidentStatus,
    StepRun,
    StepState,
    utcnow,
)

log = logging.getLogger(__name__)
NOT_RESPONDER = ("Sorry, you are not a responder for irbot. Ask an admin to add you to "
                 "IRBOT_RESPONDERS.")
POLICY_ACTOR = "policy"  # automated containment (GuardDuty policy), not a person
GUARDDUTY_ACTOR = "guardduty"  # incidents opened by a finding
MACHINE_ACTORS = (POLICY_ACTOR, GUARDDUTY_ACTOR)


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
class AwaitingApproval:
    approval: Approval


@dataclass(frozen=True)
class Decided:
    """A request was denied (or withdrawn); nothing ran."""

    approval: Approval


@dataclass(frozen=True)
class Closed:
    incident_id: str
    lines: list[str]


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
                 notifier: Notifier, playbook: Playbook, access: Access,
                 approval_steps: frozenset[str] | None = None,
                 approval_ttl: timedelta = timedelta(minutes=30),
                 evidence_bucket: str = "", follow_up_every: float = 30.0,
                 follow_up_for: float = 6 * 3600.0,
                 step_config: Mapping[str, str] | None = None) -> None:
        self.sessions = sessions
        self.aws = aws
        self.notifier = notifier
        self.playbook = playbook
        self.access = access
        self.approval_steps = (approval_steps if approval_steps is not None
                               else frozenset(s.id for s in playbook if s.needs_approval))
        self.approval_ttl = approval_ttl
        self.evidence_bucket = evidence_bucket
        self.follow_up_every = follow_up_every
        self.follow_up_for = follow_up_for
        self.step_config = dict(step_config or {})
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
        return IncidentView(incident=incident, steps=self.playbook.steps, runs=runs,
                            offered=self.playbook.offered,
                            findings=findings.findings_of(self.sessions,
                                                          incident_id=incident_id))

    def open_incidents(self) -> list[Incident]:
        """Return the incidents that are not closed."""
        return incidents.open_incidents(self.sessions)

    def open_incidents_of(self, user: str) -> list[Incident]:
        """Return the open incidents the user opened or acted in."""
        return incidents.open_incidents_of(self.sessions, user=user)

    def approvals_waiting_for(self, user: str) -> list[Approval]:
        """Return the pending requests this user may approve (not their own)."""
        return [a for a in self.pending_approvals()
                if a.requested_by != user and self.access.is_approver(user)]

    def record(self, *, action: str, actor: str, outcome: str, detail: str = "",
               incident_id: str | None = None, step_id: str | None = None) -> None:
        """Write an audit row for something decided outside the engine (a refusal)."""
        audit.append(self.sessions, action=action, actor=actor, outcome=outcome,
                     detail=detail, incident_id=incident_id, step_id=step_id)

    # --- opening -----------------------------------------------------------------------
    def open_incident(self, *, instance_id: str, actor: str, reason: str,
                      region: str | None = None, account_id: str = "",
                      seen: InstanceSummary | None = None, finding_id: str = ""
                      ) -> Opened | AlreadyOpen | OpenFailed:
        """Look the instance up in its account and region and open an incident for it, or
        point at the live one. `seen` is what a finding said about the instance: with it,
        an account irbot has no role for still gets its thread, saying what to configure.
        `finding_id` is the finding that opened it, shown in the first root message."""
        if not self._responder(actor, action="incident.open", detail=instance_id):
            return OpenFailed(NOT_RESPONDER)
        region = region or self.aws.default_region
        existing = incidents.live_incident_for_instance(self.sessions, instance_id=instance_id)
        if existing is not None and existing.region == region:
            return self._already_open(existing, actor)
        call_log = CallLog()
        params = {"instance_id": instance_id, "region": region, "reason": reason,
                  "account_id": account_id}
        no_role = ""
        try:
            summary = summarize(self.aws.reader(account_id, region), call_log, instance_id)
        except NoRole as exc:
            if seen is None:
                self.record(action="incident.open", actor=actor, outcome="failed",
                            detail=str(exc))
                return OpenFailed(str(exc))
            summary, no_role = seen, str(exc)
        except AwsError as exc:
            audit.append(self.sessions, action="incident.open", actor=actor, outcome="failed",
                         params={**params, **calls_for_audit(call_log.records)},
                         request_ids=call_log.request_ids(), detail=str(exc))
            return OpenFailed(_open_error(instance_id, region, exc))
        if account_id and summary.account_id and summary.account_id != account_id:
            detail = (f"{instance_id} belongs to account {summary.account_id}, "
                      f"not {account_id}")
            self.record(action="incident.open", actor=actor, outcome="failed", detail=detail)
            return OpenFailed(f"Could not open an incident: {detail}.")
        try:
            incident = incidents.create_incident(
                self.sessions, instance_id=instance_id,
                account_id=summary.account_id or account_id,
                region=summary.region, vpc_id=summary.vpc_id or None, opened_by=actor,
                reason=reason, instance=summary.to_dict(),
            )
        except IncidentExists as exc:
            return self._already_open(exc.existing, actor)
        if finding_id:  # the root message shows the finding that opened it from the start
            findings.link(self.sessions, finding_id=finding_id, incident_id=incident.id)
        audit.append(self.sessions, action="incident.open", actor=actor, outcome="succeeded",
                     incident_id=incident.id,
                     params={**params, **calls_for_audit(call_log.records)},
                     request_ids=call_log.request_ids(), detail=_summary_line(summary))
        posted = self._post_root(incident)
        if no_role:
            self.record(action="incident.no_role", actor="irbot", outcome="blocked",
                        incident_id=incident.id, detail=no_role)
            view = self.view(incident.id)
            if view is not None:
                self.notifier.post_in_thread(
                    view, f":no_entry: *irbot cannot act here yet.* {no_role}\nThe summary "
                    "above comes from the finding, not from AWS; steps will fail until the "
                    "role is set up.")
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
    def question_for(self, step_id: str, params: Mapping[str, str]) -> Question | None:
        """Return what the step must ask first (neither the click nor settings give it)."""
        step = self.playbook.get(step_id)
        if step is None or step.question is None:
            return None
        if params.get(step.question.param) or self.step_config.get(step.question_config):
            return None
        return step.question

    def needs_approval(self, step: Step) -> bool:
        """True when the policy says the step waits for a second person."""
        return step.id in self.approval_steps

    def request_step(self, *, incident_id: str, step_id: str, actor: str,
                     params: Mapping[str, str] | None = None
                     ) -> Ran | Refused | AwaitingApproval:
        """Claim the step and run it, or ask for approval; refuse if it is live or done."""
        if not self._responder(actor, action="step.request", incident_id=incident_id,
                               step_id=step_id):
            return Refused(NOT_RESPONDER)
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
        try:
            clean = step.check_params(params or {}) if step.check_params else {}
        except ValueError as exc:
            self.record(action="step.request", actor=actor, outcome="rejected",
                        incident_id=incident_id, step_id=step_id, detail=str(exc))
            return Refused(f"{step.label}: {exc}")
        if params and step.check_params is None:
            self.record(action="step.request", actor=actor, outcome="rejected",
                        incident_id=incident_id, step_id=step_id, detail="unexpected params")
            return Refused(f"{step.label} takes no options.")
        missing = self._missing(incident, step, actor)
        if missing:
            self.record(action="step.request", actor=actor, outcome="refused",
                        incident_id=incident_id, step_id=step_id,
                        detail="missing: " + "; ".join(missing))
            return Refused(f"{step.label} cannot run now. It needs "
                           + "; ".join(missing) + ".")
        gated = self.needs_approval(step)
        if gated and not self.access.has_approvers():
            self.record(action="step.request", actor=actor, outcome="refused",
                        incident_id=incident_id, step_id=step_id, detail="no approvers")
            return Refused(f"{step.label} needs a second person's approval, but no approvers "
                           "are configured: list them in IRBOT_APPROVERS.")
        audit.append(self.sessions, action="step.request", actor=actor, outcome="accepted",
                     incident_id=incident_id, step_id=step_id, params=clean,
                     detail="needs approval" if gated else "")
        state = StepState.AWAITING_APPROVAL if gated else StepState.RUNNING
        claim = self._claim(incident_id, step, actor, state, clean)
        if not claim.won:
            self.record(action="step.request", actor=actor, outcome="refused",
                        incident_id=incident_id, step_id=step_id,
                        detail=f"already {claim.run.state} (run {claim.run.id})")
            return Refused(_busy_reason(step, claim.run), claim.run)
        if gated:
            return self._ask_approval(incident, step, claim.run)
        return Ran(claim.run, self._run(incident, step, claim.run, actor))

    def facts(self, incident_id: str) -> Facts:
        """Return what the incident has so far (latest runs, evidence kinds)."""
        kinds = frozenset(e.kind for e in evidence.evidence_for(self.sessions,
                                                                 incident_id=incident_id))
        seen = [aware(f.first_seen) for f in findings.findings_of(
            self.sessions, incident_id=incident_id) if f.first_seen is not None]
        return Facts(runs=steps.latest_runs(self.sessions, incident_id=incident_id),
                     evidence_kinds=kinds, first_finding_at=min(seen) if seen else None)

    def _missing(self, incident: Incident, step: Step, actor: str) -> list[str]:
        """Return what must happen before the step may run (may ask AWS)."""
        if step.missing is None:
            return []
        try:
            ctx = StepContext(incident=incident, aws=self._reader(incident), log=CallLog(),
                              actor=actor, config=self.step_config)
            return step.missing(ctx, self.facts(incident.id))
        except AwsError as exc:
            return [f"could not check the prerequisites ({exc})"]

    def _claim(self, incident_id: str, step: Step, actor: str, state: StepState,
               params: dict[str, str]) -> steps.Claim:
        """Claim the step; a pending approval past its time is expired first."""
        def claim() -> steps.Claim:
            return steps.claim_step(self.sessions, incident_id=incident_id, step_id=step.id,
                                    requested_by=actor, state=state,
                                    once_only=not step.repeatable, params=params)

        first = claim()
        if first.won or first.run.state != StepState.AWAITING_APPROVAL.value:
            return first
        approval = approvals.for_run(self.sessions, run_id=first.run.id)
        if approval is not None and self._expire(approval):
            return claim()
        return first

    # --- approvals ---------------------------------------------------------------------
    def _ask_approval(self, incident: Incident, step: Step, run: StepRun) -> AwaitingApproval:
        call_log = CallLog()
        plan: dict[str, object] = {"calls": []}
        if step.plan is not None:
            try:
                aws = self._reader(incident)
                planned = step.plan(StepContext(incident=incident, aws=aws, log=call_log,
                                                actor=run.requested_by,
                                                config=self.step_config,
                                                params=dict(run.params or {})))
                plan["calls"] = [p.to_dict() for p in planned]
            except AwsError as exc:
                plan["error"] = f"could not work out the plan: {exc}"
        approval = approvals.create_approval(self.sessions, run=run, ttl=self.approval_ttl,
                                             plan=plan)
        audit.append(self.sessions, action="approval.request", actor=run.requested_by,
                     outcome="pending", incident_id=incident.id, step_id=step.id,
                     params={"approval_id": approval.id, "plan": plan,
                             "expires_at": approval.expires_at.isoformat(),
                             **calls_for_audit(call_log.records)},
                     request_ids=call_log.request_ids())
        view = self.view(incident.id)
        if view is not None:
            where = self.notifier.post_approval(view, step, approval)
            if where is not None:
                approvals.set_message(self.sessions, approval_id=approval.id,
                                      channel_id=where[0], message_ts=where[1])
        self.refresh_root(incident.id)
        fresh = approvals.get_approval(self.sessions, approval_id=approval.id)
        if fresh is not None and fresh.state != ApprovalState.PENDING.value and view:
            # Decided (or expired) before the message's place was recorded: re-render it.
            self.notifier.update_approval(view, step, fresh)
        return AwaitingApproval(fresh or approval)

    def decide(self, *, approval_id: int, actor: str,
               approve: bool) -> Ran | Refused | Decided:
        """Approve (and run) or deny a pending request, under the two-person rule."""
        verb = "approve" if approve else "deny"
        approval = approvals.get_approval(self.sessions, approval_id=approval_id)
        if approval is None:
            self.record(action=f"approval.{verb}", actor=actor, outcome="rejected",
                        detail=f"unknown approval {approval_id}")
            return Refused("There is no such approval request.")
        step = self.playbook.get(approval.step_id)
        incident = incidents.get_incident(self.sessions, incident_id=approval.incident_id)
        if step is None or incident is None:
            return Refused("That approval belongs to a step irbot no longer has.")
        refusal = self._may_decide(approval, actor, approve)
        if refusal is not None:
            self._deny_row(approval, actor, verb, refusal)
            return Refused(refusal)
        if not approvals.decide(self.sessions, approval_id=approval.id, actor=actor,
                                approve=approve):
            fresh = approvals.get_approval(self.sessions, approval_id=approval.id)
            reason = _decided_reason(fresh or approval)
            if fresh is not None and fresh.state == ApprovalState.PENDING.value:
                self._expire(fresh)
                reason = _expired_reason(fresh)
            self._deny_row(approval, actor, verb, reason)
            return Refused(reason)
        decided = approvals.get_approval(self.sessions, approval_id=approval.id) or approval
        audit.append(self.sessions, action=f"approval.{'approved' if approve else 'denied'}",
                     actor=actor, approver=actor if approve else None,
                     outcome="approved" if approve else "denied",
                     incident_id=incident.id, step_id=step.id,
                     params={"approval_id": approval.id, "requested_by": approval.requested_by},
                     detail=f"requested by {approval.requested_by}")
        view = self.view(incident.id)
        if view is not None:
            self.notifier.update_approval(view, step, decided)
        run = steps.get_run(self.sessions, run_id=approval.run_id)
        if not approve or run is None:
            self.refresh_root(incident.id)
            return Decided(decided)
        outcome = self._run(incident, step, run, approval.requested_by, approver=actor)
        view = self.view(incident.id)
        if view is not None:  # the request message shows the result under the approval
            self.notifier.update_approval(view, step, decided)
        return Ran(run, outcome)

    def _may_decide(self, approval: Approval, actor: str, approve: bool) -> str | None:
        """Return why `actor` may not decide this request now, or None."""
        if approval.state != ApprovalState.PENDING.value:
            return _decided_reason(approval)
        if aware(approval.expires_at) <= utcnow():
            self._expire(approval)
            return _expired_reason(approval)
        if approve and actor == approval.requested_by:
            return ("You asked for this step, so someone else must approve it "
                    "(two-person rule).")
        if actor == approval.requested_by:
            return None  # the requester may withdraw their own request
        if not self.access.is_approver(actor):
            return "You are not an approver for irbot."
        return None

    def _deny_row(self, approval: Approval, actor: str, verb: str, reason: str) -> None:
        audit.append(self.sessions, action=f"approval.{verb}", actor=actor, outcome="denied",
                     incident_id=approval.incident_id, step_id=approval.step_id,
                     params={"approval_id": approval.id, "requested_by": approval.requested_by},
                     detail=reason)

    def _expire(self, approval: Approval) -> bool:
        """Expire a pending approval that is past its time; report it once."""
        if not approvals.expire(self.sessions, approval_id=approval.id):
            return False
        audit.append(self.sessions, action="approval.expired", actor="irbot",
                     outcome="expired", incident_id=approval.incident_id,
                     step_id=approval.step_id,
                     params={"approval_id": approval.id, "requested_by": approval.requested_by},
                     detail=f"not approved by {when(approval.expires_at)}")
        self._rerender_approval(approval.id)
        self.refresh_root(approval.incident_id)
        return True

    def _rerender_approval(self, approval_id: int) -> None:
        """Re-render an approval request from its current state in the database."""
        fresh = approvals.get_approval(self.sessions, approval_id=approval_id)
        if fresh is None:
            return
        step = self.playbook.get(fresh.step_id)
        view = self.view(fresh.incident_id)
        if view is not None and step is not None:
            self.notifier.update_approval(view, step, fresh)

    def add_reason(self, *, approval_id: int, actor: str, reason: str,
                   denial: bool = False) -> Refused | None:
        """Attach the requester's reason (or the denier's) to an approval request."""
        approval = approvals.get_approval(self.sessions, approval_id=approval_id)
        if approval is None:
            return Refused("There is no such approval request.")
        owner = approval.decided_by if denial else approval.requested_by
        if actor != owner:
            self._deny_row(approval, actor, "reason", "only the person who asked (or denied) "
                           "may give the reason")
            return Refused("Only the person who asked (or denied) may give the reason.")
        approvals.set_reason(self.sessions, approval_id=approval.id, reason=reason,
                             decision=denial)
        audit.append(self.sessions, action="approval.reason", actor=actor, outcome="recorded",
                     incident_id=approval.incident_id, step_id=approval.step_id,
                     params={"approval_id": approval.id, "denial": denial}, detail=reason)
        self._rerender_approval(approval.id)
        return None

    def approval(self, approval_id: int) -> Approval | None:
        """Return the approval request, or None."""
        return approvals.get_approval(self.sessions, approval_id=approval_id)

    def pending_approvals(self) -> list[Approval]:
        """Return the approval requests still waiting (past-due ones are expired first)."""
        waiting = []
        for approval in approvals.pending(self.sessions):
            if aware(approval.expires_at) <= utcnow():
                self._expire(approval)
            else:
                waiting.append(approval)
        return waiting

    def close_incident(self, *, incident_id: str, actor: str,
                       summary: str = "") -> Closed | Refused:
        """Close the incident: final status, and a summary of what was done and by whom."""
        if not self._responder(actor, action="incident.close", incident_id=incident_id):
            return Refused(NOT_RESPONDER)
        incident = incidents.get_incident(self.sessions, incident_id=incident_id)
        if incident is None:
            self.record(action="incident.close", actor=actor, outcome="rejected",
                        detail=f"unknown incident {incident_id}")
            return Refused(f"There is no incident {incident_id}.")
        if incident.status in ENDED_STATUSES:
            self.record(action="incident.close", actor=actor, outcome="refused",
                        incident_id=incident_id, detail=f"already {incident.status}")
            return Refused(f"{incident_id} is already {incident.status}.")
        live = [r for r in steps.latest_runs(self.sessions, incident_id=incident_id).values()
                if r.state in (StepState.RUNNING.value, StepState.AWAITING_APPROVAL.value)]
        if live:
            names = ", ".join(f"{r.step_id} ({r.state.replace('_', ' ')})" for r in live)
            self.record(action="incident.close", actor=actor, outcome="refused",
                        incident_id=incident_id, detail=f"steps still live: {names}")
            return Refused(f"{incident_id} still has steps in progress: {names}. "
                           "Let them finish (or deny the pending approvals) first.")
        incidents.set_status(self.sessions, incident_id=incident_id,
                             status=IncidentStatus.CLOSED.value)
        lines = self._closing_lines(incident_id)
        audit.append(self.sessions, action="incident.close", actor=actor, outcome="closed",
                     incident_id=incident_id, detail=summary,
                     params={"summary_lines": lines})
        view = self.view(incident_id)
        if view is not None:
            text = (f":checkered_flag: *{incident_id} closed by <@{actor}>*"
                    + (f"\n>{summary}" if summary else "") + "\n" + "\n".join(
                        f"• {line}" for line in lines))
            self.notifier.post_in_thread(view, text)
            self._post_report(view)
        self.refresh_root(incident_id)
        return Closed(incident_id=incident_id, lines=lines)

    def report(self, incident_id: str) -> str | None:
        """Return the incident's post-incident report (Markdown), or None."""
        return build_report(self.sessions, self.playbook, incident_id)

    def _post_report(self, view: IncidentView) -> None:
        """Attach the post-incident report to the thread; its hash goes in the audit."""
        text = self.report(view.incident.id)
        if text is None:
            return
        content = text.encode()
        digest = hashlib.sha256(content).hexdigest()
        posted = self.notifier.attach_file(view, Artifact(
            kind="report", filename=f"{view.incident.id}-report.md", content=content,
            title=f"Post-incident report {view.incident.id}"), digest)
        audit.append(self.sessions, action="report.posted", actor="irbot",
                     outcome="posted" if posted else "failed", incident_id=view.incident.id,
                     params={"sha256": digest, "size": len(content)},
                     detail="" if posted else "the report could not be attached; run "
                     f"`irbot report {view.incident.id}`")

    def _closing_lines(self, incident_id: str) -> list[str]:
        incident = incidents.get_incident(self.sessions, incident_id=incident_id)
        assert incident is not None
        latest = steps.latest_runs(self.sessions, incident_id=incident_id)
        lines = []
        for step in self.playbook:
            run = latest.get(step.id)
            if run is None:
                lines.append(f"{step.label}: not run")
                continue
            approved = f", approved by <@{run.approved_by}>" if run.approved_by else ""
            lines.append(f"{step.label}: {run.state} (asked by <@{run.requested_by}>{approved},"
                         f" {when(run.finished_at or run.requested_at)})")
        times = durations(incident, latest,
                          audit.events_for(self.sessions, incident_id=incident_id))
        lines.append(f"Time to contain (from when {times.start_label} to isolation "
                     f"verified): {times.contain_text()}")
        if times.terminated is not None:
            lines.append(f"Time to terminate: {times.terminate_text()}")
        return lines

    def _reader(self, incident: Incident) -> Aws:
        """Return the handle for looking at the incident's account and region."""
        return self.aws.reader(incident.account_id, incident.region)

    def _responder(self, actor: str, *, action: str, incident_id: str | None = None,
                   step_id: str | None = None, detail: str = "") -> bool:
        if actor in MACHINE_ACTORS or self.access.is_responder(actor):
            return True
        self.record(action=action, actor=actor, outcome="denied", incident_id=incident_id,
                    step_id=step_id, detail=f"not a responder {detail}".strip())
        return False

    def _run(self, incident: Incident, step: Step, run: StepRun, actor: str,
             approver: str = "") -> StepOutcome:
        audit.append(self.sessions, action="step.start", actor=actor, outcome="started",
                     approver=approver or None, incident_id=incident.id, step_id=step.id,
                     params={"instance_id": incident.instance_id, "region": incident.region})
        # Show "Isolating… (by @x)" without making containment wait for Slack.
        self._background.submit(self.refresh_root, incident.id)
        call_log = CallLog()
        ctx: StepContext | None = None
        try:
            missing = self._missing(incident, step, actor) if approver else []
            aws = self.aws.for_action(
                call_log, region=incident.region, account_id=incident.account_id,
                identity=Identity(incident_id=incident.id, requester=actor, approver=approver))
            ctx = StepContext(incident=incident, aws=aws, log=call_log, actor=actor,
                              approver=approver, config=self.step_config,
                              facts=self.facts(incident.id), params=dict(run.params or {}))
            if missing:  # it held when asked, but not any more
                outcome = StepOutcome(ok=False, headline=f"{step.label} did not run: "
                                      "missing " + "; ".join(missing))
            else:
                outcome = step.run(ctx)
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
        audit.append(self.sessions, action="step.result", approver=approver or None,
                     actor=actor, outcome="succeeded" if outcome.ok else "failed",
                     incident_id=incident.id, step_id=step.id,
                     params=calls_for_audit(call_log.records),
                     request_ids=call_log.request_ids(), detail=outcome.headline)
        if outcome.ok and outcome.incident_status:
            incidents.set_status(self.sessions, incident_id=incident.id,
                                 status=outcome.incident_status)
        if outcome.instance_state:  # the root message shows the state AWS reported last
            incidents.set_instance_state(self.sessions, incident_id=incident.id,
                                         state=outcome.instance_state)
        view = self.view(incident.id)
        if view is not None:
            self.notifier.post_step_result(view, step, finished, outcome)
            self._keep(view, step, finished, outcome.artifacts, actor)
        self.refresh_root(incident.id)
        if outcome.ok and step.follow_up is not None and ctx is not None:
            threading.Thread(target=self._follow, args=(ctx, step, finished),
                             name=f"follow-{incident.id}-{step.id}", daemon=True).start()
        return outcome

    def _keep(self, view: IncidentView, step: Step, run: StepRun,
              artifacts: list[Artifact], actor: str) -> None:
        """Hash, store (S3 when configured), record and attach each artifact."""
        incident = view.incident
        for artifact in artifacts:
            digest = hashlib.sha256(artifact.content).hexdigest()
            locations = []
            call_log = CallLog()
            if self.evidence_bucket:
                key = f"{incident.id}/{run.id}-{artifact.filename}"
                try:
                    locations.append(put_evidence(
                        self.aws.for_region(incident.region), call_log,
                        bucket=self.evidence_bucket, key=key, body=artifact.content,
                        sha256=digest, incident_id=incident.id, kind=artifact.kind))
                except AwsError as exc:
                    self.notifier.post_in_thread(
                        view, f":warning: {artifact.title} could not be written to "
                        f"s3://{self.evidence_bucket}: {exc}")
            if self.notifier.attach_file(view, artifact, digest):
                locations.append(f"slack:{incident.channel_id}/{incident.root_ts}/"
                                 f"{artifact.filename}")
            evidence.add_evidence(self.sessions, incident_id=incident.id, kind=artifact.kind,
                                  sha256=digest, size=len(artifact.content),
                                  location=" ".join(locations) or "database only",
                                  collected_by=actor)
            audit.append(self.sessions, action="evidence.stored", actor=actor,
                         outcome="stored", incident_id=incident.id, step_id=step.id,
                         params={"kind": artifact.kind, "filename": artifact.filename,
                                 "sha256": digest, "size": len(artifact.content),
                                 "locations": locations},
                         request_ids=call_log.request_ids())

    def _follow(self, ctx: StepContext, step: Step, run: StepRun) -> None:
        """Track a step's background work until done (or the deadline); post changes."""
        assert step.follow_up is not None
        deadline = time.monotonic() + self.follow_up_for
        said = ""
        result = dict(run.result)
        while True:
            try:
                look = step.follow_up(ctx, result)
            except AwsError as exc:
                look = FollowUp(done=False, text=f"Could not check {step.label}: {exc}")
            except Exception:
                log.exception("follow-up of %s for %s crashed", step.id, ctx.incident.id)
                return
            if look.result:
                result.update(look.result)
                steps.update_result(self.sessions, run_id=run.id, result=result)
            view = self.view(ctx.incident.id)
            if look.text and look.text != said and view is not None:
                self.notifier.post_in_thread(view, look.text)
                said = look.text
            if look.done:
                audit.append(self.sessions, action="step.follow_up", actor="irbot",
                             outcome="completed" if look.ok else "failed",
                             incident_id=ctx.incident.id, step_id=step.id,
                             detail=look.text, request_ids=ctx.log.request_ids()[-20:])
                self.refresh_root(ctx.incident.id)
                return
            if time.monotonic() > deadline:
                if view is not None:
                    self.notifier.post_in_thread(view, f":warning: Stopped tracking "
                                                 f"{step.label} after the deadline: {said}")
                return
            time.sleep(self.follow_up_every)

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
        return f"{step.label} was already done by {who} at {when(run.finished_at)}."
    if run.state == StepState.RUNNING.value:
        return (f"{step.label} is already running (started by {who} at "
                f"{when(run.started_at)}).")
    return f"{step.label} is already {run.state.replace('_', ' ')} (asked by {who})."


def when(value: datetime | None) -> str:
    """Format a time for people, in UTC."""
    return aware(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "an unknown time"


def _decided_reason(approval: Approval) -> str:
    if approval.state == ApprovalState.EXPIRED.value:
        return _expired_reason(approval)
    return (f"This request was already {approval.state} by <@{approval.decided_by}> "
            f"at {when(approval.decided_at)}.")


def _expired_reason(approval: Approval) -> str:
    return (f"This approval request expired at {when(approval.expires_at)}. "
            "Ask for the step again.")


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
