"""GuardDuty intake: each finding is recorded, then opens its instance's incident or joins
it. Bursts are coalesced (one thread digest and one root update per incident per second),
and an optional policy isolates matching instances after a cancellable countdown."""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from aws.instances import summary_from_finding
from playbooks.coalesce import Coalescer
from playbooks.engine import GUARDDUTY_ACTOR, POLICY_ACTOR, Engine, OpenFailed, Refused
from playbooks.findings import FindingIn, FindingPolicy, severity_label, skip_reason
from storage import audit, countdowns, findings, incidents
from storage.approvals import aware
from storage.models import ENDED_STATUSES, CountdownState, StepState, utcnow

log = logging.getLogger(__name__)
MAX_DIGEST_LINES = 10
REPEAT_NOTICE_AFTER = 600.0  # seconds before the same failure to open is posted again


@dataclass(frozen=True)
class AutoIsolate:
    """Findings of these types (wildcards) at or above `min_severity` isolate their
    instance after `delay` seconds unless someone cancels. No types: off."""

    types: tuple[str, ...] = ()
    min_severity: float = 7.0
    delay: float = 60.0

    def matches(self, finding: FindingIn) -> bool:
        """True when the policy applies to the finding."""
        return (bool(self.types) and finding.severity >= self.min_severity
                and any(fnmatch.fnmatchcase(finding.type, p) for p in self.types))


def cancelled_text(actor: str) -> str:
    """Return what a cancelled countdown's message becomes."""
    return (f":octagonal_sign: Automatic isolation *cancelled* by <@{actor}>. Isolate stays "
            "one click away in the root message.")


def label_of(finding: FindingIn) -> str:
    """Return how a finding is named in messages: [sample] type (band number)."""
    return (f"{'[sample] ' if finding.sample else ''}{finding.type} "
            f"({severity_label(finding.severity)} {finding.severity:g})")


def digest(lines: list[str]) -> str:
    """Return one thread message for the findings that arrived since the last one."""
    if len(lines) == 1:
        return f":mag: {lines[0]}"
    shown = "\n".join(f"• {line}" for line in lines[:MAX_DIGEST_LINES])
    more = len(lines) - MAX_DIGEST_LINES
    tail = f"\n…and {more} more (all are listed in the audit trail)" if more > 0 else ""
    return f":mag: {len(lines)} new GuardDuty findings:\n{shown}{tail}"


class Intake:
    """Takes checked findings and turns them into incidents, thread digests and, by
    policy, automatic isolation."""

    def __init__(self, engine: Engine, *, policy: FindingPolicy,
                 auto: AutoIsolate | None = None, interval: float = 1.0) -> None:
        self.engine = engine
        self.policy = policy
        self.auto = auto or AutoIsolate()
        self._news: dict[str, list[str]] = {}
        self._news_lock = threading.Lock()
        self._flush = Coalescer(self._post_news, interval=interval)
        self._opening: dict[str, threading.Lock] = {}
        self._opening_guard = threading.Lock()
        self._told: dict[tuple[str, str], float] = {}  # (instance, reason) -> when posted
        self._timers: dict[str, threading.Timer] = {}
        self._firing: set[threading.Thread] = set()  # countdowns over, isolation under way
        self._countdown_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="findings")
        self._queued = 0
        self._queue_done = threading.Condition()

    def submit(self, finding: FindingIn) -> None:
        """Handle the finding on the intake pool (the HTTP answer does not wait for it)."""
        with self._queue_done:
            self._queued += 1
        self._pool.submit(self._handle, finding)

    def _handle(self, finding: FindingIn) -> None:
        try:
            log.info("finding %s: %s", finding.id, self.ingest(finding))
        except Exception:  # the sender has its 202: the log and the audit trail must hear
            log.exception("finding %s could not be handled", finding.id)
            self.engine.record(action="finding.error", actor=GUARDDUTY_ACTOR,
                               outcome="error",
                               detail=f"finding {finding.id} could not be handled")
        finally:
            with self._queue_done:
                self._queued -= 1
                self._queue_done.notify_all()

    # --- findings ----------------------------------------------------------------------
    def ingest(self, finding: FindingIn) -> str:
        """Record the finding and act on it; return what happened, for the log."""
        engine = self.engine
        row, before = findings.upsert_finding(
            engine.sessions, finding_id=finding.id, type=finding.type,
            severity=finding.severity, count=finding.count, first_seen=finding.first_seen,
            last_seen=finding.last_seen, raw=finding.raw)
        label = label_of(finding)
        skip = skip_reason(finding, self.policy)
        if skip:
            audit.append(engine.sessions, action="finding.ignored", actor=GUARDDUTY_ACTOR,
                         outcome="ignored", params={"finding_id": finding.id}, detail=skip)
            return f"ignored: {skip}"
        if not finding.instance_id:
            if before is None:
                engine.notifier.post_notice(
                    f":mag: GuardDuty {label} on {finding.resource_type or 'a resource'} in "
                    f"{finding.account_id}/{finding.region}: {finding.title}\nNot about an EC2 "
                    "instance, so no EC2 steps apply.")
            audit.append(engine.sessions, action="finding.notice", actor=GUARDDUTY_ACTOR,
                         outcome="noticed", params={"finding_id": finding.id},
                         detail=finding.title)
            return "posted as a notice (not about an EC2 instance)"
        incident_id = self._incident_for(finding, label)
        if isinstance(incident_id, OpenFailed):
            return f"not opened: {incident_id.message}"
        findings.link(engine.sessions, finding_id=finding.id, incident_id=incident_id)
        audit.append(engine.sessions, action="finding.linked", actor=GUARDDUTY_ACTOR,
                     outcome="linked", incident_id=incident_id,
                     params={"finding_id": finding.id, "count": row.count,
                             "severity": finding.severity, "type": finding.type},
                     detail=finding.title)
        # A sample (CreateSampleFindings) tests the pipeline; it never isolates by itself.
        matched = self.auto.matches(finding)
        held_back = matched and finding.sample
        # A re-sent finding is news only when it was seen more often since.
        if before is None or row.count > before:
            seen = f", seen {finding.count} times" if finding.count > 1 else ""
            note = (" (a sample finding: IRBOT_AUTO_ISOLATE matched, but samples are never "
                    "isolated automatically)" if held_back else "")
            with self._news_lock:
                self._news.setdefault(incident_id, []).append(
                    f"GuardDuty {label}{seen}: {finding.title}{note}")
            if held_back:
                audit.append(engine.sessions, action="policy.auto_isolate",
                             actor=POLICY_ACTOR, outcome="skipped", incident_id=incident_id,
                             step_id="isolate", params={"finding_id": finding.id},
                             detail="sample finding: never isolated automatically")
        self._flush.ask(incident_id)
        if matched and not held_back:
            self._start_countdown(incident_id, finding)
        return f"added to {incident_id}"

    def _incident_for(self, finding: FindingIn, label: str) -> str | OpenFailed:
        """Return the instance's live incident id, opening the incident if needed."""
        engine = self.engine
        with self._opening_guard:
            lock = self._opening.setdefault(finding.instance_id, threading.Lock())
        with lock:  # two findings for a new instance open one incident, not a race
            existing = incidents.live_incident_for_instance(
                engine.sessions, instance_id=finding.instance_id)
            if existing is not None:
                return existing.id
            seen = summary_from_finding(
                finding.raw.get("resource", {}).get("instanceDetails"),
                account_id=finding.account_id, region=finding.region)
            opened = engine.open_incident(
                instance_id=finding.instance_id, actor=GUARDDUTY_ACTOR,
                region=finding.region, account_id=finding.account_id, seen=seen,
                finding_id=finding.id,
                reason=f"GuardDuty {label}: {finding.title}")
        if isinstance(opened, OpenFailed):
            if self._first_telling(finding.instance_id, opened.message):
                engine.notifier.post_notice(
                    f":warning: GuardDuty {label} for {finding.instance_id} "
                    f"({finding.account_id}/{finding.region}): {opened.message}\nThe later "
                    "findings for it that fail the same way in the next "
                    f"{REPEAT_NOTICE_AFTER / 60:g} minutes are only in the audit trail.")
            return opened
        return opened.incident.id

    def _first_telling(self, instance_id: str, reason: str) -> bool:
        """True when this failure for this instance was not posted in the last while (a
        burst of findings for an instance irbot cannot open gives one notice, not many)."""
        now = time.monotonic()
        with self._opening_guard:
            self._told = {k: t for k, t in self._told.items()
                          if now - t < REPEAT_NOTICE_AFTER}
            if (instance_id, reason) in self._told:
                return False
            self._told[(instance_id, reason)] = now
            return True

    def _post_news(self, incident_id: str) -> None:
        """Post the findings that arrived since the last digest, then re-render the root."""
        with self._news_lock:
            lines = self._news.pop(incident_id, [])
        view = self.engine.view(incident_id)
        if view is None:
            return
        if lines and not self.engine.notifier.post_in_thread(view, digest(lines)):
            with self._news_lock:  # Slack refused even after retries: try again later
                self._news[incident_id] = lines + self._news.get(incident_id, [])
            self._flush.ask(incident_id)
        self.engine.refresh_root(incident_id)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for queued findings, then pending digests and root updates (shutdown,
        tests)."""
        deadline = time.monotonic() + timeout
        with self._queue_done:
            while self._queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue_done.wait(left)
        return self._flush.wait_idle(max(0.0, deadline - time.monotonic()))

    def close(self, wait: float = 0.0) -> None:
        """Stop this process's countdown timers (the countdowns stay pending in the
        database for the next start) and the intake pool; give an automatic isolation
        already under way up to `wait` seconds to finish."""
        with self._countdown_lock:
            timers, self._timers = list(self._timers.values()), {}
            firing = list(self._firing)
        for timer in timers:
            timer.cancel()
        deadline = time.monotonic() + wait
        for thread in firing:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, timeout: float = 10.0) -> None:
        """On the way down: let queued findings, digests and a running automatic isolation
        finish (up to `timeout` seconds in all), then close."""
        deadline = time.monotonic() + timeout
        if not self.wait_idle(timeout):
            log.warning("findings or digests were still pending at shutdown")
        self.close(wait=max(0.0, deadline - time.monotonic()))

    # --- automatic isolation -----------------------------------------------------------
    # The countdown lives in the database (one per incident, decided once by a conditional
    # UPDATE); each process only holds a timer. A cancel on any replica wins over every
    # timer, and a restart resumes what was pending.
    def _start_countdown(self, incident_id: str, finding: FindingIn) -> None:
        engine = self.engine
        run = engine.facts(incident_id).runs.get("isolate")
        if run is not None and run.state in (
                StepState.SUCCEEDED.value, StepState.RUNNING.value,
                StepState.AWAITING_APPROVAL.value):
            return
        view = engine.view(incident_id)
        if view is None or view.incident.status in ENDED_STATUSES:
            return
        delay = self.auto.delay
        created = countdowns.create_countdown(
            engine.sessions, incident_id=incident_id, finding_id=finding.id,
            due_at=utcnow() + timedelta(seconds=delay))
        if created is None:  # one per incident: after a cancel, people are in charge
            return
        audit.append(engine.sessions, action="policy.auto_isolate", actor=POLICY_ACTOR,
                     outcome="scheduled", incident_id=incident_id, step_id="isolate",
                     params={"finding_id": finding.id, "type": finding.type,
                             "severity": finding.severity, "delay_seconds": delay},
                     detail=f"isolating in {delay:g} s unless cancelled")
        text = (f":stopwatch: *Isolating in {delay:g} s unless cancelled.* "
                f"Policy IRBOT_AUTO_ISOLATE matched GuardDuty {label_of(finding)}.")
        where = engine.notifier.post_countdown(view, text, incident_id)
        if where is not None:
            countdowns.set_message(engine.sessions, incident_id=incident_id,
                                   channel_id=where[0], message_ts=where[1])
            now = countdowns.get_countdown(engine.sessions, incident_id=incident_id)
            if now is not None and now.state == CountdownState.CANCELLED.value:
                # Cancelled while its message was on the way: say so on the message.
                engine.notifier.replace_message(where[0], where[1],
                                                cancelled_text(now.decided_by or "?"))
                return
        self._schedule(incident_id, delay)

    def _schedule(self, incident_id: str, delay: float) -> None:
        timer = threading.Timer(delay, self._countdown_over, args=(incident_id,))
        timer.daemon = True
        with self._countdown_lock:
            old = self._timers.pop(incident_id, None)
            self._timers[incident_id] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def resume(self, *, stale_after: float = 900.0) -> int:
        """Schedule the countdowns a restart left pending; one overdue by more than
        `stale_after` seconds is dropped with a notice, not run. Return how many resumed."""
        resumed = 0
        for countdown in countdowns.pending(self.engine.sessions):
            left = (aware(countdown.due_at) - utcnow()).total_seconds()
            if left < -stale_after:
                self._drop_stale(countdown.incident_id)
                continue
            self._schedule(countdown.incident_id, max(0.0, left))
            resumed += 1
        return resumed

    def _drop_stale(self, incident_id: str) -> None:
        engine = self.engine
        dropped = countdowns.decide(engine.sessions, incident_id=incident_id,
                                    state=CountdownState.CANCELLED, by="irbot")
        if dropped is None:
            return
        detail = "automatic isolation dropped: irbot was down when it was due"
        audit.append(engine.sessions, action="policy.cancel", actor="irbot",
                     outcome="cancelled", incident_id=incident_id, step_id="isolate",
                     detail=detail)
        if dropped.channel_id and dropped.message_ts:
            engine.notifier.replace_message(
                dropped.channel_id, dropped.message_ts,
                f":warning: Automatic isolation was *not run*: {detail}. Isolate is one "
                "click away in the root message.")

    def _countdown_over(self, incident_id: str) -> None:
        me = threading.current_thread()
        with self._countdown_lock:
            self._timers.pop(incident_id, None)
            self._firing.add(me)
        try:
            self._isolate_by_policy(incident_id)
        finally:
            with self._countdown_lock:
                self._firing.discard(me)

    def _isolate_by_policy(self, incident_id: str) -> None:
        engine = self.engine
        started = countdowns.decide(engine.sessions, incident_id=incident_id,
                                    state=CountdownState.STARTED, by=POLICY_ACTOR)
        if started is None:  # cancelled, or started by another replica
            return
        if started.channel_id and started.message_ts:
            engine.notifier.replace_message(
                started.channel_id, started.message_ts,
                ":robot_face: *Isolating now* (policy IRBOT_AUTO_ISOLATE; nobody cancelled).")
        try:
            outcome = engine.request_step(incident_id=incident_id, step_id="isolate",
                                          actor=POLICY_ACTOR)
        except Exception:  # the audit trail must hear of it
            log.exception("automatic isolation of %s failed", incident_id)
            engine.record(action="policy.auto_isolate", actor=POLICY_ACTOR, outcome="error",
                          incident_id=incident_id, step_id="isolate",
                          detail="automatic isolation crashed")
            return
        if isinstance(outcome, Refused):
            view = engine.view(incident_id)
            if view is not None:
                engine.notifier.post_in_thread(
                    view, f":warning: Automatic isolation did not run: {outcome.reason}")

    def cancel_countdown(self, *, incident_id: str, actor: str) -> str | None:
        """Cancel a pending automatic isolation; return why not, or None when cancelled."""
        engine = self.engine
        if not engine.access.is_responder(actor):
            engine.record(action="policy.cancel", actor=actor, outcome="denied",
                          incident_id=incident_id, detail="not a responder")
            return "Only responders may cancel automatic isolation."
        cancelled = countdowns.decide(engine.sessions, incident_id=incident_id,
                                      state=CountdownState.CANCELLED, by=actor)
        if cancelled is None:
            engine.record(action="policy.cancel", actor=actor, outcome="refused",
                          incident_id=incident_id, detail="no countdown pending")
            return ("There is no automatic isolation waiting for this incident: it already "
                    "started or was cancelled.")
        with self._countdown_lock:
            timer = self._timers.pop(incident_id, None)
        if timer is not None:
            timer.cancel()
        audit.append(engine.sessions, action="policy.cancel", actor=actor,
                     outcome="cancelled", incident_id=incident_id, step_id="isolate",
                     params={"finding_id": cancelled.finding_id},
                     detail="automatic isolation cancelled")
        if cancelled.channel_id and cancelled.message_ts:
            engine.notifier.replace_message(cancelled.channel_id, cancelled.message_ts,
                                            cancelled_text(actor))
        return None
