"""Validation of what Slack sends: slash command text and button payloads."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws.instances import is_instance_id

MAX_REASON = 500
_INCIDENT_ID = re.compile(r"^IR-\d{4}-\d{4,}$")
_STEP_ID = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_PARAM = re.compile(r"^[a-z_]{1,32}$")


class BadInput(ValueError):
    """Input that irbot will not act on; the message is for the person who sent it."""


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Open:
    instance_id: str
    reason: str
    account_id: str = ""  # empty: the bot's own account
    region: str = ""  # empty: AWS_REGION


@dataclass(frozen=True)
class Close:
    incident_id: str
    summary: str


Command = Help | Status | Open | Close


def parse_command(text: str, command: str = "/ir") -> Command:
    """Parse the slash command's text; raise BadInput with a helpful message."""
    words = (text or "").strip().split(None, 1)
    if not words or words[0].lower() == "help":
        return Help()
    verb, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if verb == "status":
        return Status()
    if verb == "open":
        return _parse_open(rest, command)
    if verb == "close":
        parts = rest.split(None, 1)
        if not parts or not _INCIDENT_ID.match(parts[0].upper()):
            raise BadInput(f"Which incident? Usage: `{command} close IR-2026-0001 [summary]`")
        summary = parts[1].strip() if len(parts) > 1 else ""
        if len(summary) > 2000:
            raise BadInput(f"The summary is {len(summary)} characters; keep it under 2000.")
        return Close(incident_id=parts[0].upper(), summary=summary)
    raise BadInput(f"I don't know `{verb[:30]}`. Try `{command} help`.")


_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_OPEN_FLAGS = {"--account": ("account_id", _ACCOUNT, "a 12-digit account id"),
               "--region": ("region", _REGION, "a region like eu-west-1")}


def _parse_open(rest: str, command: str) -> Open:
    """Parse `<instance-id> [--account <id>] [--region <region>] [reason]`; the flags may
    come before or after the instance id, the reason is whatever follows them."""
    usage = (f"Usage: `{command} open <instance-id> [--account <id>] [--region <region>] "
             "[reason]`")
    words = rest.split()
    found: dict[str, str] = {}
    instance_id = ""
    while words:
        word = words[0]
        flag, has_value, value = word.partition("=")
        if flag.lower() in _OPEN_FLAGS:
            words.pop(0)
            if not has_value:
                if not words:
                    raise BadInput(f"`{flag}` needs a value. {usage}")
                value = words.pop(0)
            field, pattern, what = _OPEN_FLAGS[flag.lower()]
            value = value.strip().lower()
            if not pattern.match(value):
                raise BadInput(f"`{value[:40]}` is not {what}. {usage}")
            found[field] = value
        elif word.startswith("--"):
            raise BadInput(f"I don't know the option `{word[:30]}`. {usage}")
        elif not instance_id:
            instance_id = words.pop(0)
            if not is_instance_id(instance_id.lower()):
                raise BadInput(f"`{instance_id[:40]}` is not an EC2 instance id: they look "
                               f"like `i-0123456789abcdef0`. {usage}")
            instance_id = instance_id.lower()
        else:
            break
    if not instance_id:
        raise BadInput(f"Which instance? {usage}")
    reason = " ".join(words)
    if len(reason) > MAX_REASON:
        raise BadInput(f"The reason is {len(reason)} characters; keep it under {MAX_REASON}.")
    return Open(instance_id=instance_id, reason=reason, **found)


def _one_click(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the clicking user's id and the single action of a block_actions payload."""
    user_id = str((body.get("user") or {}).get("id", ""))
    if not _USER_ID.match(user_id):
        raise BadInput("The click carries no valid Slack user.")
    actions = body.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise BadInput("The click carries no single action.")
    return user_id, actions[0]


@dataclass(frozen=True)
class StepClick:
    incident_id: str
    step_id: str
    user_id: str
    params: dict[str, str]


def parse_step_click(body: dict[str, Any], prefix: str) -> StepClick:
    """Validate a step button's payload; raise BadInput if any part does not hold."""
    user_id, action = _one_click(body)
    action_id = str(action.get("action_id", ""))
    if not action_id.startswith(prefix):
        raise BadInput("That is not a step button.")
    # A button carries its value; a select, the value of the option picked.
    raw = action.get("value") or (action.get("selected_option") or {}).get("value", "")
    try:
        value = json.loads(str(raw))
    except ValueError:
        raise BadInput("That button's value is not valid.") from None
    if not isinstance(value, dict):
        raise BadInput("That button's value is not valid.")
    incident_id, step_id = str(value.get("incident", "")), str(value.get("step", ""))
    if not _INCIDENT_ID.match(incident_id) or not _STEP_ID.match(step_id):
        raise BadInput("That button does not name a valid incident and step.")
    if action_id != f"{prefix}{step_id}":
        raise BadInput("That button's action and value disagree.")
    params = value.get("params") or {}
    if not isinstance(params, dict) or len(params) > 5 or not all(
            isinstance(k, str) and isinstance(v, str) and _PARAM.match(k) and len(v) <= 64
            for k, v in params.items()):
        raise BadInput("That button's options are not valid.")
    return StepClick(incident_id=incident_id, step_id=step_id, user_id=user_id,
                     params=dict(params))


@dataclass(frozen=True)
class ApprovalClick:
    approval_id: int
    user_id: str


def parse_approval_click(body: dict[str, Any]) -> ApprovalClick:
    """Validate an Approve, Deny or Add reason click."""
    user_id, action = _one_click(body)
    return ApprovalClick(approval_id=_approval_id(action.get("value")), user_id=user_id)


def _approval_id(raw: object) -> int:
    try:
        value = json.loads(str(raw or ""))
    except ValueError:
        raise BadInput("That button's value is not valid.") from None
    approval = value.get("approval") if isinstance(value, dict) else None
    if not isinstance(approval, int) or isinstance(approval, bool) or approval <= 0:
        raise BadInput("That button does not name a valid approval request.")
    return approval


def _submission(body: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return a modal submission's user id, view and private metadata, all checked."""
    user_id = str((body.get("user") or {}).get("id", ""))
    if not _USER_ID.match(user_id):
        raise BadInput("The submission carries no valid Slack user.")
    view = body.get("view") or {}
    if not isinstance(view, dict):
        raise BadInput("The submission carries no view.")
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        raise BadInput("The submission's metadata is not valid.") from None
    if not isinstance(meta, dict):
        raise BadInput("The submission's metadata is not valid.")
    return user_id, view, meta


@dataclass(frozen=True)
class ReasonSubmission:
    approval_id: int
    denial: bool
    reason: str
    user_id: str


def parse_reason_submission(body: dict[str, Any], block_id: str,
                            action_id: str) -> ReasonSubmission:
    """Validate the reason modal's submission."""
    user_id, view, meta = _submission(body)
    approval_id = _approval_id(json.dumps({"approval": meta.get("approval")}))
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    reason = str((values.get(action_id) or {}).get("value") or "").strip()
    if len(reason) > MAX_REASON:
        raise BadInput(f"The reason is {len(reason)} characters; keep it under {MAX_REASON}.")
    return ReasonSubmission(approval_id=approval_id, denial=bool(meta.get("denial")),
                            reason=reason, user_id=user_id)


@dataclass(frozen=True)
class OpenClick:
    instance_id: str
    from_incident: str
    user_id: str


def parse_open_click(body: dict[str, Any]) -> OpenClick:
    """Validate an "Open incident" button from the lateral movement table."""
    user_id, action = _one_click(body)
    try:
        value = json.loads(str(action.get("value", "")))
    except ValueError:
        raise BadInput("That button's value is not valid.") from None
    if not isinstance(value, dict):
        raise BadInput("That button's value is not valid.")
    instance_id, origin = str(value.get("instance", "")), str(value.get("from", ""))
    if not is_instance_id(instance_id) or not _INCIDENT_ID.match(origin):
        raise BadInput("That button does not name a valid instance and incident.")
    return OpenClick(instance_id=instance_id, from_incident=origin, user_id=user_id)


def parse_incident_click(body: dict[str, Any]) -> tuple[str, str]:
    """Validate a click whose value is an incident id (Close, Cancel); return (incident id,
    user id)."""
    user_id, action = _one_click(body)
    incident_id = str(action.get("value", ""))
    if not _INCIDENT_ID.match(incident_id):
        raise BadInput("That button does not name a valid incident.")
    return incident_id, user_id


@dataclass(frozen=True)
class Answer:
    incident_id: str
    step_id: str
    param: str
    value: str
    user_id: str
    channel: str


def parse_answer(body: dict[str, Any], find_step: Callable[[str], Any]) -> Answer:
    """Validate a question modal's submission against the step's own question."""
    user_id, view, meta = _submission(body)
    incident_id, step_id = str(meta.get("incident", "")), str(meta.get("step", ""))
    step = find_step(step_id) if _STEP_ID.match(step_id) else None
    if not _INCIDENT_ID.match(incident_id) or step is None or step.question is None:
        raise BadInput("The submission does not name a step that asks anything.")
    values = ((view.get("state") or {}).get("values") or {}).get("answer") or {}
    value = str((values.get("answer") or {}).get("value") or "").strip()
    if not re.fullmatch(step.question.pattern, value):
        raise BadInput(f"That is not a valid {step.question.label.lower()}.")
    channel = str(meta.get("channel", ""))
    return Answer(incident_id=incident_id, step_id=step_id, param=step.question.param,
                  value=value, user_id=user_id,
                  channel=channel if re.fullmatch(r"[CGD][A-Z0-9]{2,}", channel) else "")
