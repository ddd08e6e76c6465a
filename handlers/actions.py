"""Buttons in the incident thread: step buttons, Approve, Deny, Add reason, and the reason
modal. Each click is validated, then handed to the engine."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.ids import ActionId, BlockId, ViewId
from handlers.commands import open_and_reply
from handlers.guard import channel_of, guarded, wrong_channel_text
from handlers.parsing import (
    BadInput,
    parse_answer,
    parse_approval_click,
    parse_incident_click,
    parse_open_click,
    parse_reason_submission,
    parse_step_click,
)
from playbooks.engine import AwaitingApproval, Decided, Engine, Refused
from playbooks.model import Question
from storage.models import Approval

# (trigger_id, approval, denial) -> opens the reason modal
OpenReason = Callable[[str, Approval, bool], None]
# (trigger_id, channel, incident id, step id, question) -> opens the question modal
Ask = Callable[[str, str, str, str, Question], None]
# (channel, user, text) -> an ephemeral message (for modals, which have no response_url)
Tell = Callable[[str, str, str], None]


# (incident id, user) -> None when cancelled, or why not
CancelAuto = Callable[[str, str], str | None]


def register(app: App, *, engine: Engine, channels: tuple[str, ...],
             open_reason: OpenReason, link: Callable[[str, str], str], ask: Ask,
             tell: Tell, cancel_auto: CancelAuto) -> None:
    """Register every button's ack and work functions."""

    def ack_click(ack: Ack) -> None:
        ack()

    def refuse(body: dict[str, Any], respond: Respond, action: str, text: str,
               outcome: str) -> None:
        user = str((body.get("user") or {}).get("id", "?"))[:64]
        engine.record(action=action, actor=user, outcome=outcome, detail=text)
        respond(text=f":no_entry: {text}", response_type="ephemeral", replace_original=False)

    def in_channel(body: dict[str, Any], respond: Respond, action: str) -> bool:
        if channel_of(body) in channels:
            return True
        refuse(body, respond, action, wrong_channel_text(channels), "denied")
        return False

    @guarded(engine, "step.click")
    def step_clicked(body: dict[str, Any], respond: Respond) -> None:
        if not in_channel(body, respond, "step.click"):
            return
        try:
            click = parse_step_click(body, ActionId.STEP_PREFIX.value)
        except BadInput as exc:
            refuse(body, respond, "step.click", f"{exc} Nothing was done.", "rejected")
            return
        question = engine.question_for(click.step_id, click.params)
        if question is not None and body.get("trigger_id"):
            ask(str(body["trigger_id"]), channel_of(body), click.incident_id, click.step_id,
                question)
            return
        outcome = engine.request_step(incident_id=click.incident_id, step_id=click.step_id,
                                      actor=click.user_id, params=click.params)
        if isinstance(outcome, Refused):
            respond(text=f":no_entry: {outcome.reason} Nothing was run.",
                    response_type="ephemeral", replace_original=False)
        elif isinstance(outcome, AwaitingApproval):
            trigger = str(body.get("trigger_id", ""))
            if trigger:
                open_reason(trigger, outcome.approval, False)

    def decision(approve: bool) -> Callable[..., None]:
        action = "approval.approve" if approve else "approval.deny"

        @guarded(engine, action)
        def clicked(body: dict[str, Any], respond: Respond) -> None:
            if not in_channel(body, respond, action):
                return
            try:
                click = parse_approval_click(body)
            except BadInput as exc:
                refuse(body, respond, action, f"{exc} Nothing was done.", "rejected")
                return
            outcome = engine.decide(approval_id=click.approval_id, actor=click.user_id,
                                    approve=approve)
            if isinstance(outcome, Refused):
                respond(text=f":no_entry: {outcome.reason}", response_type="ephemeral",
                        replace_original=False)
            elif isinstance(outcome, Decided) and body.get("trigger_id"):
                open_reason(str(body["trigger_id"]), outcome.approval, True)

        return clicked

    @guarded(engine, "approval.reason")
    def reason_clicked(body: dict[str, Any], respond: Respond) -> None:
        if not in_channel(body, respond, "approval.reason"):
            return
        try:
            click = parse_approval_click(body)
        except BadInput as exc:
            refuse(body, respond, "approval.reason", f"{exc} Nothing was done.", "rejected")
            return
        approval = engine.approval(click.approval_id)
        if approval is None or approval.requested_by != click.user_id:
            refuse(body, respond, "approval.reason",
                   "Only the person who asked may add the reason.", "denied")
            return
        open_reason(str(body.get("trigger_id", "")), approval, False)

    def ack_reason(ack: Ack) -> None:
        ack()  # closes the modal; the reason is stored after

    @guarded(engine, "approval.reason")
    def reason_submitted(body: dict[str, Any], respond: Respond | None) -> None:
        try:
            submission = parse_reason_submission(body, BlockId.REASON.value,
                                                 ActionId.REASON_INPUT.value)
        except BadInput as exc:
            user = str((body.get("user") or {}).get("id", "?"))[:64]
            engine.record(action="approval.reason", actor=user, outcome="rejected",
                          detail=str(exc))
            return
        if submission.reason:
            engine.add_reason(approval_id=submission.approval_id, actor=submission.user_id,
                              reason=submission.reason, denial=submission.denial)

    @guarded(engine, "incident.open")
    def open_clicked(body: dict[str, Any], respond: Respond) -> None:
        if not in_channel(body, respond, "incident.open"):
            return
        try:
            click = parse_open_click(body)
        except BadInput as exc:
            refuse(body, respond, "incident.open", f"{exc} Nothing was done.", "rejected")
            return
        open_and_reply(engine, instance_id=click.instance_id, user=click.user_id,
                       reason=f"suspected lateral movement from {click.from_incident}",
                       respond=respond, link=link)

    def incident_button(action: str, act: Callable[[str, str], str | None]
                        ) -> Callable[..., None]:
        """A button whose value is the incident id: Close incident, Cancel (auto-isolate)."""
        @guarded(engine, action)
        def clicked(body: dict[str, Any], respond: Respond) -> None:
            if not in_channel(body, respond, action):
                return
            try:
                incident_id, user = parse_incident_click(body)
            except BadInput as exc:
                refuse(body, respond, action, f"{exc} Nothing was done.", "rejected")
                return
            why_not = act(incident_id, user)
            if why_not:
                respond(text=f":no_entry: {why_not}", response_type="ephemeral",
                        replace_original=False)

        return clicked

    def close(incident_id: str, user: str) -> str | None:
        closed = engine.close_incident(incident_id=incident_id, actor=user)
        return closed.reason if isinstance(closed, Refused) else None

    def ack_answer(ack: Ack, body: dict[str, Any]) -> None:
        try:
            parse_answer(body, engine.playbook.get)
        except BadInput as exc:  # shown under the field; the modal stays open
            ack(response_action="errors", errors={BlockId.ANSWER.value: str(exc)})
            return
        ack()

    @guarded(engine, "step.request")
    def answer_submitted(body: dict[str, Any], respond: Respond | None) -> None:
        try:
            answer = parse_answer(body, engine.playbook.get)
        except BadInput as exc:
            user = str((body.get("user") or {}).get("id", "?"))[:64]
            engine.record(action="step.request", actor=user, outcome="rejected",
                          detail=str(exc))
            return
        outcome = engine.request_step(incident_id=answer.incident_id, step_id=answer.step_id,
                                      actor=answer.user_id,
                                      params={answer.param: answer.value})
        if isinstance(outcome, Refused) and answer.channel:
            tell(answer.channel, answer.user_id, f":no_entry: {outcome.reason} Nothing was run.")

    prefix = re.escape(ActionId.STEP_PREFIX.value)
    app.action(re.compile(f"^{prefix}"))(ack=ack_click, lazy=[step_clicked])
    app.action(ActionId.APPROVE.value)(ack=ack_click, lazy=[decision(True)])
    app.action(ActionId.DENY.value)(ack=ack_click, lazy=[decision(False)])
    app.action(ActionId.ADD_REASON.value)(ack=ack_click, lazy=[reason_clicked])
    app.view(ViewId.REASON.value)(ack=ack_reason, lazy=[reason_submitted])
    app.view(ViewId.QUESTION.value)(ack=ack_answer, lazy=[answer_submitted])
    app.action(ActionId.CLOSE.value)(ack=ack_click,
                                     lazy=[incident_button("incident.close", close)])
    app.action(ActionId.CANCEL_AUTO.value)(ack=ack_click,
                                           lazy=[incident_button("policy.cancel", cancel_auto)])
    app.action(f"{ActionId.FOLLOW_UP_PREFIX}open-incident")(ack=ack_click, lazy=[open_clicked])
