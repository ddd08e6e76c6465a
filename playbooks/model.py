"""What a step is, what running one returns, and what the engine tells the outside."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws.plans import PlannedCall
from aws.session import Aws, CallLog
from storage.models import Approval, Finding, Incident, StepRun


@dataclass(frozen=True)
class Facts:
    """What the incident has so far, for a step's prerequisites."""

    runs: dict[str, StepRun]
    evidence_kinds: frozenset[str]
    first_finding_at: datetime | None = None  # when GuardDuty first saw the activity


@dataclass(frozen=True)
class StepContext:
    """Everything a step's action may use."""

    incident: Incident
    aws: Aws
    log: CallLog
    actor: str
    approver: str = ""
    config: Mapping[str, str] = field(default_factory=dict)  # step settings (profiles, AMIs)
    facts: Facts = field(default_factory=lambda: Facts(runs={}, evidence_kinds=frozenset()))
    params: Mapping[str, str] = field(default_factory=dict)  # from the button (validated)


@dataclass(frozen=True)
class Artifact:
    """A piece of evidence a step produced: stored with its hash, attached to the thread."""

    kind: str  # metadata, console-output, screenshot, triage-output, flow-log-query, ...
    filename: str
    content: bytes
    title: str


@dataclass(frozen=True)
class ActionButton:
    """A follow-up button a step's result offers (e.g. open an incident for a neighbour)."""

    label: str
    action: str  # an action the app knows: "open-incident"
    value: str
    step_id: str = ""  # or: a (hidden) step of the playbook, run like any other step
    params: Mapping[str, str] = field(default_factory=dict)  # for that step


@dataclass(frozen=True)
class StepChoice:
    """A select on a step's result: each option runs `step_id` with its parameters."""

    placeholder: str
    step_id: str
    options: list[tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Question:
    """A value a step needs from the person, asked in a modal (e.g. the golden AMI)."""

    param: str
    label: str
    hint: str
    pattern: str  # what the answer must match


@dataclass(frozen=True)
class StepOutcome:
    """A step's result: the verdict, a headline and lines for people, data for the record."""

    ok: bool
    headline: str
    lines: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    incident_status: str | None = None
    instance_state: str | None = None  # the instance's state read back, when the step moved it
    artifacts: list[Artifact] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)  # first row: the header
    buttons: list[ActionButton] = field(default_factory=list)
    choice: StepChoice | None = None


@dataclass(frozen=True)
class FollowUp:
    """One look at a step's background work (snapshots completing): done, and what to say."""

    done: bool
    text: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


@dataclass(frozen=True)
class Step:
    """One playbook step, declared once: the checklist, buttons and help come from here."""

    id: str
    label: str
    title: str
    summary: str
    running_text: str
    run: Callable[[StepContext], StepOutcome]
    permissions: tuple[str, ...]
    confirm: str | None = None
    destructive: bool = False
    needs_approval: bool = False
    # What the step will do, checked without doing it (shown to approvers).
    plan: Callable[[StepContext], list[PlannedCall]] | None = None
    # What is missing before the step may run (empty: it may); may look at AWS.
    missing: Callable[[StepContext, Facts], list[str]] | None = None
    # Asked in a modal when neither the button nor the settings (config key) give it.
    question: Question | None = None
    question_config: str = ""
    # A read-only step that may run again once done (never twice at once).
    repeatable: bool = False
    # Check a button's parameters; return them cleaned, or raise ValueError.
    check_params: Callable[[Mapping[str, str]], dict[str, str]] | None = None
    # Background tracking after success, called every `follow_up_every` seconds.
    follow_up: Callable[[StepContext, dict[str, Any]], FollowUp] | None = None


@dataclass(frozen=True)
class IncidentView:
    """An incident with its steps and their latest runs, for rendering."""

    incident: Incident
    steps: tuple[Step, ...]
    runs: dict[str, StepRun]
    offered: tuple[Step, ...] = ()
    findings: list[Finding] = field(default_factory=list)


class Access(Protocol):
    """Who may act; bot/ implements it from settings and Slack user groups."""

    def is_responder(self, user: str) -> bool:
        """True when the user may open incidents and request steps."""

    def is_approver(self, user: str) -> bool:
        """True when the user may approve another person's request."""

    def has_approvers(self) -> bool:
        """True when anyone at all may approve."""


class Notifier(Protocol):
    """How the engine reports to people; bot/ implements it for Slack."""

    def post_root(self, view: IncidentView) -> tuple[str, str] | None:
        """Post the incident's root message; return (channel, ts) or None if it failed."""

    def update_root(self, view: IncidentView) -> None:
        """Re-render the root message in place."""

    def post_step_result(self, view: IncidentView, step: Step, run: StepRun,
                         outcome: StepOutcome) -> None:
        """Post a step's result in the incident thread."""

    def post_in_thread(self, view: IncidentView, text: str) -> bool:
        """Post a plain notice in the incident thread; True if it went."""

    def post_notice(self, text: str) -> None:
        """Post a notice in the incident channel, outside any thread."""

    def attach_file(self, view: IncidentView, artifact: Artifact, sha256: str) -> bool:
        """Attach an artifact to the incident thread as a file; True if it went."""

    def post_approval(self, view: IncidentView, step: Step,
                      approval: Approval) -> tuple[str, str] | None:
        """Post an approval request in the thread; return (channel, ts) or None."""

    def update_approval(self, view: IncidentView, step: Step, approval: Approval) -> None:
        """Re-render an approval request (its buttons replaced once decided)."""

    def post_countdown(self, view: IncidentView, text: str,
                       incident_id: str) -> tuple[str, str] | None:
        """Post a countdown with a Cancel button in the thread; return (channel, ts)."""

    def replace_message(self, channel: str, ts: str, text: str) -> None:
        """Replace a message (and its buttons) with plain text."""
