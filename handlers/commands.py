"""The /ir slash command: open, status, help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers.guard import channel_of, guarded, wrong_channel_text
from handlers.parsing import BadInput, Close, Help, Open, Status, parse_command
from playbooks.engine import NOT_RESPONDER, AlreadyOpen, Engine, Opened, OpenFailed, Refused

Links = Callable[[str, str], str]
HelpText = Callable[[], str]
StatusText = Callable[[], str]
QuickCheck = Callable[[str], bool | None]


def register(app: App, *, engine: Engine, command: str, channels: tuple[str, ...],
             help_text: HelpText, status_text: StatusText, link: Links,
             quick_is_responder: QuickCheck) -> None:
    """Register the slash command's ack and work functions."""

    def ack_command(ack: Ack, body: dict[str, Any]) -> None:
        if channel_of(body) not in channels:
            ack(text=wrong_channel_text(channels))
            return
        try:
            parsed = parse_command(str(body.get("text", "")), command)
        except BadInput as exc:
            ack(text=str(exc))
            return
        if isinstance(parsed, Help):
            ack(text=help_text())
        elif isinstance(parsed, Close):
            ack(text=f"Closing {parsed.incident_id}…")
        elif isinstance(parsed, Open):
            if quick_is_responder(str(body.get("user_id", ""))) is False:
                ack(text=NOT_RESPONDER)
            else:
                ack(text=f"Opening an incident for {parsed.instance_id}…")
        else:
            ack()

    @guarded(engine, "command")
    def work(body: dict[str, Any], respond: Respond) -> None:
        user = str(body.get("user_id", "")) or "?"
        text = str(body.get("text", ""))
        if channel_of(body) not in channels:
            engine.record(action="command", actor=user, outcome="denied",
                          detail=f"from channel {channel_of(body) or '?'}: {text[:200]!r}")
            return
        try:
            parsed = parse_command(text, command)
        except BadInput as exc:
            engine.record(action="command", actor=user, outcome="rejected",
                          detail=f"{text[:200]!r}: {exc}")
            return
        if isinstance(parsed, Status):
            respond(text=status_text(), response_type="ephemeral")
        elif isinstance(parsed, Close):
            closed = engine.close_incident(incident_id=parsed.incident_id, actor=user,
                                           summary=parsed.summary)
            if isinstance(closed, Refused):
                respond(text=f":no_entry: {closed.reason}", response_type="ephemeral")
            else:
                respond(text=f":checkered_flag: Closed {closed.incident_id}.",
                        response_type="ephemeral")
        elif isinstance(parsed, Open):
            open_and_reply(engine, instance_id=parsed.instance_id, reason=parsed.reason,
                           user=user, respond=respond, link=link,
                           account_id=parsed.account_id, region=parsed.region)

    app.command(command)(ack=ack_command, lazy=[work])


def open_and_reply(engine: Engine, *, instance_id: str, reason: str, user: str,
                   respond: Respond, link: Links, account_id: str = "",
                   region: str = "") -> None:
    """Open an incident for the instance and tell the user where it is, or why not."""
    outcome = engine.open_incident(instance_id=instance_id, actor=user, reason=reason,
                                   account_id=account_id, region=region or None)
    if isinstance(outcome, OpenFailed):
        icon = ":no_entry:" if outcome.message == NOT_RESPONDER else ":x:"
        respond(text=f"{icon} {outcome.message}", response_type="ephemeral")
        return
    incident = outcome.incident
    where = ""
    if incident.channel_id and incident.root_ts:
        url = link(incident.channel_id, incident.root_ts)
        where = f" <{url}|Go to the thread>." if url else f" See <#{incident.channel_id}>."
    if isinstance(outcome, AlreadyOpen):
        respond(text=f"`{incident.instance_id}` already has an open incident: *{incident.id}* "
                     f"({incident.status}).{where}", response_type="ephemeral")
    elif isinstance(outcome, Opened) and outcome.posted:
        respond(text=f":rotating_light: Opened *{incident.id}* for `{incident.instance_id}`."
                     f"{where}", response_type="ephemeral")
    else:
        respond(text=f":warning: Opened *{incident.id}*, but its message could not be posted "
                     "in the incident channel (is the bot a member?). Run the same command "
                     "again to retry the post.", response_type="ephemeral")
