"""Block Kit builders: pure functions from domain data to Slack message dicts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.ids import ActionId, BlockId, ViewId
from playbooks.findings import observed, severity_label
from playbooks.model import IncidentView, Question, Step, StepOutcome
from storage.approvals import aware
from storage.models import Approval, ApprovalState, Incident, StepRun, StepState

Block = dict[str, Any]
SECTION_LIMIT = 3000
MAX_BLOCKS = 50
BUTTON_TEXT_LIMIT = 75

# Runs that are over without a success: the step's button is offered again.
RETRYABLE = (StepState.FAILED.value, StepState.INTERRUPTED.value, StepState.DENIED.value,
             StepState.EXPIRED.value)

_STATUS_ICON = {
    "open": ":rotating_light:",
    "contained": ":lock:",
    "eradicated": ":broom:",
    "recovered": ":white_check_mark:",
    "closed": ":checkered_flag:",
    "false-positive": ":information_source:",
}


def when(value: datetime | None) -> str:
    """Format a time for people: UTC, to the second."""
    return aware(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "unknown"


def mention(user: str) -> str:
    """Return a Slack mention for a user id, or the actor name for a non-user actor."""
    return f"<@{user}>" if user[:1] in ("U", "W") else f"`{user}`"


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    """Return a plain_text object cut to `limit` characters."""
    return {"type": "plain_text", "text": _cut(text, limit), "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    """Return a mrkdwn text object cut to Slack's section limit."""
    return {"type": "mrkdwn", "text": _cut(text, SECTION_LIMIT)}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def button_value(incident_id: str, step_id: str,
                 params: Mapping[str, str] | None = None) -> str:
    """Encode what a step button refers to (and the options it carries)."""
    value: dict[str, Any] = {"incident": incident_id, "step": step_id}
    if params:
        value["params"] = dict(params)
    return json.dumps(value, separators=(",", ":"))


def step_button(incident: Incident, step: Step, *, retry: bool = False,
                gated: bool = False, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the button for a step, with a confirm dialog when it changes AWS."""
    label = f"Retry {step.label}" if retry else step.label
    if gated:
        label = f"{label} (needs approval)"
    button: dict[str, Any] = {
        "type": "button",
        "action_id": f"{ActionId.STEP_PREFIX}{step.id}",
        "text": plain(label, BUTTON_TEXT_LIMIT),
        "value": button_value(incident.id, step.id, params),
    }
    if step.destructive:
        button["style"] = "danger"
    if step.confirm:
        text = step.confirm.format(instance=incident.instance_id)
        if gated:
            text = "Asks a second person to approve. " + text
        button["confirm"] = {
            "title": plain(f"{step.label} {incident.instance_id}?", 100),
            "text": mrkdwn(_cut(text, 300)),
            "confirm": plain("Ask for approval" if gated else step.label, 30),
            "deny": plain("Cancel", 30),
            **({"style": "danger"} if step.destructive else {}),
        }
    return button


def _field(label: str, value: str) -> dict[str, Any]:
    return mrkdwn(f"*{label}*\n{value or '—'}")


def _pair(label: str, first: str, second: str) -> dict[str, Any]:
    """A field of two values (type / state); a missing one shows as a dash."""
    return _field(label, f"{first or '—'} / {second or '—'}" if first or second else "")


def instance_fields(incident: Incident) -> list[dict[str, Any]]:
    """Return the instance summary as section fields (Slack allows 10)."""
    i = incident.instance
    groups = ", ".join(f"{g['id']} ({g['name']})" if g.get("name") else g["id"]
                       for g in i.get("security_groups", []))
    role = ", ".join(i.get("role_names", [])) or (
        i.get("instance_profile_arn", "").rsplit("/", 1)[-1] if i.get("instance_profile_arn")
        else "none")
    return [
        _field("Instance", f"`{incident.instance_id}` {escape(i.get('name', ''))}".strip()),
        _pair("Type / state", i.get("instance_type", ""), i.get("state", "")),
        _field("Account / region", f"{incident.account_id} / {incident.region}"),
        _pair("VPC / subnet", i.get("vpc_id", ""), i.get("subnet_id", "")),
        _field("Private IPs", ", ".join(i.get("private_ips", []))),
        _field("Public IPs", ", ".join(i.get("public_ips", [])) or "none"),
        _field("Security groups", escape(groups)),
        _field("IAM role", escape(role)),
        _field("Launched", str(i.get("launch_time", ""))),
        _field("Status", f"{_STATUS_ICON.get(incident.status, '')} {incident.status}"),
    ]


def checklist_line(step: Step, run: StepRun | None) -> str:
    """Return one step's line in the checklist."""
    if run is None:
        return f":white_square: *{step.label}*: {step.title.lower()}"
    who = mention(run.requested_by)
    if run.state == StepState.RUNNING.value:
        return f":hourglass_flowing_sand: *{step.running_text}* (by {who})"
    if run.state == StepState.SUCCEEDED.value:
        return (f":white_check_mark: *{step.label}*: done by {who} at {when(run.finished_at)}"
                f"\n      {escape(run.error or _headline(run))}")
    if run.state == StepState.FAILED.value:
        return (f":x: *{step.label}* failed (by {who} at {when(run.finished_at)}): "
                f"{escape(run.error or '')}")
    if run.state == StepState.INTERRUPTED.value:
        return f":warning: *{step.label}* was interrupted (by {who}): run it again"
    if run.state == StepState.AWAITING_APPROVAL.value:
        return f":raised_hand: *{step.label}* awaiting approval (asked by {who})"
    if run.state == StepState.DENIED.value:
        return f":no_entry: *{step.label}* was denied (asked by {who}): ask again if needed"
    if run.state == StepState.EXPIRED.value:
        return f":hourglass: *{step.label}* approval expired (asked by {who}): ask again"
    return f":grey_question: *{step.label}*: {run.state.replace('_', ' ')} (by {who})"


def _headline(run: StepRun) -> str:
    return str(run.result.get("headline", "")) if run.result else ""


def findings_section(view: IncidentView) -> list[Block]:
    """Return the root message's list of GuardDuty findings (none: no block)."""
    if not view.findings:
        return []
    lines = []
    for f in view.findings[:15]:
        sample = "[sample] " if f.raw.get("service", {}).get("additionalInfo", {}).get(
            "sample") in (True, "true") else ""
        seen = f", seen {f.count} times" if f.count > 1 else ""
        last = f", last {when(f.last_seen)}" if f.last_seen else ""
        lines.append(f"• {sample}`{escape(f.type)}` {severity_label(f.severity)} "
                     f"{f.severity:g}{seen}{last}: {escape(str(f.raw.get('title', '')))}")
    if len(view.findings) > 15:
        lines.append(f"…and {len(view.findings) - 15} more")
    return [*lead_finding(view),
            {"type": "section", "text": mrkdwn("*GuardDuty findings*\n" + "\n".join(lines))}]


def lead_finding(view: IncidentView) -> list[Block]:
    """Return the most severe finding in full: what, where, what was seen, and when."""
    lead = max(view.findings, key=lambda f: f.severity)
    raw = lead.raw
    seen = observed(raw)
    text = (f"*{escape(str(raw.get('title', '')))}*\n`{escape(lead.type)}` · "
            f"{severity_label(lead.severity)} {lead.severity:g} · "
            f"account {escape(str(raw.get('accountId', '')))} · "
            f"{escape(str(raw.get('region', '')))}\n"
            f">{escape(str(raw.get('description', ''))[:600])}")
    if seen:
        text += "\n*Seen:* " + escape("; ".join(seen))
    text += (f"\n*First seen* {when(lead.first_seen)} · *last seen* {when(lead.last_seen)} "
             f"· *count* {lead.count}")
    return [{"type": "section", "text": mrkdwn(text[:2900])}]


def root_message(view: IncidentView, gated: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Return the incident's root message: summary, who and why, checklist, buttons."""
    incident = view.incident
    name = incident.instance.get("name") or incident.instance_id
    blocks: list[Block] = [
        {"type": "header", "text": plain(f"{incident.id} · compromised instance {name}")},
        {"type": "section", "fields": instance_fields(incident)},
        {"type": "context", "elements": [mrkdwn(
            f"Opened by {mention(incident.opened_by)} at {when(incident.opened_at)}"
            + (f" · Reason: {escape(incident.reason)}" if incident.reason else "")
        )]},
        *findings_section(view),
        {"type": "divider"},
        {"type": "section", "block_id": BlockId.CHECKLIST.value, "text": mrkdwn(
            "*Playbook*\n" + "\n".join(
                checklist_line(step, view.runs.get(step.id)) for step in view.steps)
        )},
    ]
    buttons = [
        step_button(incident, step, retry=run is not None and not step.repeatable,
                    gated=step.id in gated)
        for step in view.steps
        if (run := view.runs.get(step.id)) is None
        or run.state in RETRYABLE
        or (step.repeatable and run.state == StepState.SUCCEEDED.value)
    ]
    if incident.status not in ("closed", "false-positive"):
        buttons.append({
            "type": "button", "action_id": ActionId.CLOSE.value, "value": incident.id,
            "text": plain("Close incident", BUTTON_TEXT_LIMIT),
            "confirm": {"title": plain(f"Close {incident.id}?", 100),
                        "text": mrkdwn("Marks the incident closed and posts a summary of the "
                                       "steps taken. No AWS change. Use `/ir close "
                                       f"{incident.id} <summary>` to add a summary."),
                        "confirm": plain("Close", 30), "deny": plain("Cancel", 30)}})
        blocks.append({"type": "actions", "block_id": BlockId.STEP_BUTTONS.value,
                       "elements": buttons[:25]})
    blocks.append({"type": "context", "elements": [mrkdwn(
        "Every step and its result is posted in this thread and kept in the audit trail "
        f"(`irbot audit show {incident.id}`).")]})
    return {
        "text": f"{incident.id}: compromised instance {incident.instance_id} ({incident.status})",
        "blocks": blocks,
    }


def view_step(view: IncidentView, step_id: str) -> Step | None:
    """Return a step of the view's playbook (checklist or offered) by id."""
    return next((s for s in (*view.steps, *view.offered) if s.id == step_id), None)


def step_result_message(view: IncidentView, step: Step, run: StepRun,
                        outcome: StepOutcome) -> dict[str, Any]:
    """Return the thread message reporting a step's result."""
    icon = ":white_check_mark:" if outcome.ok else ":warning:"
    blocks: list[Block] = [
        {"type": "section", "text": mrkdwn(f"{icon} *{escape(outcome.headline)}*")},
    ]
    blocks.extend(_line_sections(outcome.lines))
    blocks.extend(table_sections(outcome.table))
    if outcome.buttons:
        elements = []
        for b in outcome.buttons[:25]:
            offered = view_step(view, b.step_id) if b.step_id else None
            if offered is not None:
                elements.append({**step_button(view.incident, offered, params=b.params),
                                 "text": plain(b.label, BUTTON_TEXT_LIMIT)})
            else:
                elements.append({"type": "button", "value": b.value,
                                 "action_id": f"{ActionId.FOLLOW_UP_PREFIX}{b.action}",
                                 "text": plain(b.label, BUTTON_TEXT_LIMIT)})
        blocks.append({"type": "actions", "block_id": BlockId.FOLLOW_UPS.value,
                       "elements": elements})
    if outcome.choice is not None:
        choice = outcome.choice
        blocks.append({"type": "actions", "block_id": BlockId.CHOICE.value, "elements": [{
            "type": "static_select", "action_id": f"{ActionId.STEP_PREFIX}{choice.step_id}",
            "placeholder": plain(choice.placeholder, 150),
            "options": [{"text": plain(label, 75),
                         "value": button_value(view.incident.id, choice.step_id, params)}
                        for label, params in choice.options[:100]],
        }]})
    approved = f" · approved by {mention(run.approved_by)}" if run.approved_by else ""
    blocks.append({"type": "context", "elements": [mrkdwn(
        f"{step.label} requested by {mention(run.requested_by)}{approved} · "
        f"started {when(run.started_at)} · finished {when(run.finished_at)} · "
        f"{view.incident.id} run {run.id}")]})
    return {"text": f"{view.incident.id}: {outcome.headline}", "blocks": blocks[:MAX_BLOCKS]}


def _line_sections(lines: Sequence[str]) -> Iterable[Block]:
    """Pack lines into as few sections as the 3,000-character limit allows."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        text = "• " + escape(line)
        if chunk and size + len(text) + 1 > SECTION_LIMIT:
            yield {"type": "section", "text": mrkdwn("\n".join(chunk))}
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield {"type": "section", "text": mrkdwn("\n".join(chunk))}


def table_sections(rows: Sequence[Sequence[str]], *, max_rows: int = 40) -> Iterable[Block]:
    """Render rows (the first is the header) as aligned monospace text, in sections."""
    if not rows:
        return
    shown = [list(map(str, r)) for r in rows[: max_rows + 1]]
    widths = [min(40, max(len(r[i]) if i < len(r) else 0 for r in shown))
              for i in range(len(shown[0]))]
    lines = ["  ".join(_cut(c, w).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
             for r in shown]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(rows) - 1 > max_rows:
        lines.append(f"… {len(rows) - 1 - max_rows} more rows in the attached file")
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) + 8 > SECTION_LIMIT:
            yield {"type": "section", "text": mrkdwn("```" + "\n".join(chunk) + "```")}
            chunk = []
        chunk.append(escape(line))
    yield {"type": "section", "text": mrkdwn("```" + "\n".join(chunk) + "```")}


def help_text(command: str, steps: Sequence[Step]) -> str:
    """Return the `/ir help` text."""
    step_lines = "\n".join(f"• *{s.label}*: {s.summary}" for s in steps)
    return (
        f"*irbot: incident response for compromised EC2 instances*\n"
        f"`{command} open <instance-id> [reason]`: open an incident thread for the instance\n"
        f"`{command} open <instance-id> --account <id> --region <region> [reason]`: one in "
        "another account (its role must be in IRBOT_ACCOUNT_ROLES) or region\n"
        f"`{command} status`: list the open incidents\n"
        f"`{command} close <IR-id> [summary]`: close an incident with a summary\n"
        f"`{command} help`: this message\n\n"
        f"*Steps (buttons in the incident thread)*\n{step_lines}"
    )


def status_text(incidents: Sequence[Incident], links: dict[str, str]) -> str:
    """Return the `/ir status` text: open incidents with links to their threads."""
    if not incidents:
        return "No open incidents."
    lines = [f"*Open incidents ({len(incidents)})*"]
    for incident in incidents[:50]:
        name = incident.instance.get("name") or ""
        link = links.get(incident.id)
        label = f"<{link}|{incident.id}>" if link else incident.id
        lines.append(f"• {label}: `{incident.instance_id}` {escape(name)} · {incident.status} "
                     f"· opened by {mention(incident.opened_by)} {when(incident.opened_at)}")
    if len(incidents) > 50:
        lines.append(f"…and {len(incidents) - 50} more")
    return "\n".join(lines)


def home_view(incidents: Sequence[Incident], links: dict[str, str],
              waiting: Sequence[Approval], approval_links: dict[int, str]) -> dict[str, Any]:
    """Return the Home tab: the viewer's open incidents and the approvals waiting for them."""
    lines = [f"*Approvals waiting for you ({len(waiting)})*"]
    for approval in waiting[:40]:
        link = approval_links.get(approval.id)
        label = f"<{link}|{approval.step_id} on {approval.incident_id}>" if link else (
            f"{approval.step_id} on {approval.incident_id}")
        lines.append(f"• {label}: asked by {mention(approval.requested_by)}, "
                     f"expires {when(approval.expires_at)}")
    if not waiting:
        lines.append("_Nothing waits for you._")
    body: list[Block] = [
        {"type": "header", "text": plain("irbot")},
        {"type": "section", "text": mrkdwn("\n".join(lines))},
        {"type": "divider"},
        {"type": "section", "text": mrkdwn(
            status_text(incidents, links).replace("*Open incidents", "*Your open incidents", 1)
            if incidents else "*Your open incidents*\n_None: incidents you open or act in "
            "show here._")},
        {"type": "context", "elements": [mrkdwn(
            "Open an incident with `/ir open <instance-id> [reason]`; `/ir help` for more.")]},
    ]
    return {"type": "home", "blocks": body}


def _approval_value(approval: Approval) -> str:
    return json.dumps({"approval": approval.id}, separators=(",", ":"))


def approval_message(view: IncidentView, step: Step, approval: Approval) -> dict[str, Any]:
    """Return the approval request: who, why, what exactly, and Approve / Deny."""
    incident = view.incident
    who = mention(approval.requested_by)
    blocks: list[Block] = [
        {"type": "section", "text": mrkdwn(
            f":raised_hand: {who} asks to run *{step.label}* on `{incident.instance_id}` "
            f"({incident.id}). It needs a second person's approval.")},
        {"type": "section", "text": mrkdwn(
            f"*Why:* {escape(approval.reason)}" if approval.reason
            else "*Why:* _no reason given yet_")},
    ]
    plan_lines = [
        f"`{c['action']}` on `{c['resource']}`: {escape(c['what'])}. DryRun: {escape(c['check'])}"
        for c in approval.plan.get("calls", [])
    ]
    if approval.plan.get("error"):
        plan_lines.append(f":warning: {escape(str(approval.plan['error']))}")
    if any(not c.get("ok", True) for c in approval.plan.get("calls", [])):
        plan_lines.append(":warning: A DryRun check failed: the step would not complete "
                          "as it stands. Fix the permission before approving.")
    blocks.append({"type": "section", "text": mrkdwn(
        "*What will be done*\n" + ("\n".join(f"• {line}" for line in plan_lines)
                                   or "_(no plan available)_"))})
    state = approval.state
    if state == ApprovalState.PENDING.value:
        blocks.append({"type": "context", "elements": [mrkdwn(
            f"Expires {when(approval.expires_at)} · any approver but {who} may approve; "
            f"{who} may withdraw it with Deny.")]})
        blocks.append({"type": "actions", "block_id": BlockId.APPROVAL_BUTTONS.value,
                       "elements": _approval_buttons(incident, step, approval)})
    elif state == ApprovalState.APPROVED.value:
        run = view.runs.get(step.id)
        result = f"Running {step.label}…"
        if run is not None and run.id == approval.run_id and run.state != "running":
            icon = ":white_check_mark:" if run.state == "succeeded" else ":warning:"
            result = f"{icon} Result: {escape(_headline(run) or run.state)}"
        blocks.append({"type": "section", "text": mrkdwn(
            f":white_check_mark: Approved by {mention(approval.decided_by or '?')}, "
            f"requested by {who} · {when(approval.decided_at)}. {result}")})
    elif state == ApprovalState.DENIED.value:
        why = f" Why: {escape(approval.decision_reason)}" if approval.decision_reason else ""
        verb = "Withdrawn" if approval.decided_by == approval.requested_by else "Denied"
        blocks.append({"type": "section", "text": mrkdwn(
            f":no_entry: {verb} by {mention(approval.decided_by or '?')}, requested by {who} "
            f"· {when(approval.decided_at)}. {step.label} did not run.{why}")})
    else:
        blocks.append({"type": "section", "text": mrkdwn(
            f":hourglass: Expired {when(approval.expires_at)} without a decision. "
            f"{step.label} did not run; ask again if it is still needed.")})
    return {"text": f"{incident.id}: {step.label} awaits approval ({state})", "blocks": blocks}


def _approval_buttons(incident: Incident, step: Step, approval: Approval) -> list[Block]:
    value = _approval_value(approval)
    return [
        {"type": "button", "action_id": ActionId.APPROVE.value, "style": "primary",
         "text": plain(f"Approve {step.label}", BUTTON_TEXT_LIMIT), "value": value,
         "confirm": {
             "title": plain(f"Approve {step.label}?", 100),
             "text": mrkdwn(_cut(f"{step.label} runs at once on {incident.instance_id} "
                                 f"({incident.id}), as asked by {approval.requested_by}.",
                                 300)),
             "confirm": plain("Approve and run", 30), "deny": plain("Cancel", 30),
             **({"style": "danger"} if step.destructive else {}),
         }},
        {"type": "button", "action_id": ActionId.DENY.value,
         "text": plain("Deny", BUTTON_TEXT_LIMIT), "value": value},
        {"type": "button", "action_id": ActionId.ADD_REASON.value,
         "text": plain("Add reason", BUTTON_TEXT_LIMIT), "value": value},
    ]


def reason_modal(approval: Approval, step: Step, *, denial: bool) -> dict[str, Any]:
    """Return the modal that asks why (the request, or its denial)."""
    title = "Why deny?" if denial else "Why is it needed?"
    return {
        "type": "modal",
        "callback_id": ViewId.REASON.value,
        "private_metadata": json.dumps({"approval": approval.id, "denial": denial}),
        "title": plain(title, 24),
        "submit": plain("Save", 24),
        "close": plain("Skip", 24),
        "blocks": [
            {"type": "section", "text": mrkdwn(
                f"{step.label} on `{approval.incident_id}`: the reason goes into the thread "
                "and the audit trail.")},
            {"type": "input", "block_id": BlockId.REASON.value, "optional": True,
             "label": plain("Reason"),
             "element": {"type": "plain_text_input", "action_id": ActionId.REASON_INPUT.value,
                         "multiline": True, "max_length": 500}},
        ],
    }


def question_modal(incident_id: str, step: Step, question: Question,
                   channel: str) -> dict[str, Any]:
    """Return the modal asking for the value a step needs (e.g. the golden AMI)."""
    return {
        "type": "modal",
        "callback_id": ViewId.QUESTION.value,
        "private_metadata": json.dumps({"incident": incident_id, "step": step.id,
                                        "param": question.param, "channel": channel}),
        "title": plain(step.label, 24),
        "submit": plain("Go on", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            {"type": "input", "block_id": BlockId.ANSWER.value,
             "label": plain(question.label),
             "hint": plain(question.hint, 150),
             "element": {"type": "plain_text_input", "action_id": ActionId.ANSWER_INPUT.value,
                         "max_length": 64}},
        ],
    }


def countdown_message(text: str, incident_id: str) -> dict[str, Any]:
    """Return the automatic-isolation countdown with its Cancel button."""
    return {"text": text, "blocks": [
        {"type": "section", "text": mrkdwn(text)},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": ActionId.CANCEL_AUTO.value, "value": incident_id,
            "style": "danger", "text": plain("Cancel"),
        }]},
    ]}
