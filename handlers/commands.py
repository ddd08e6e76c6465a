"""The /ir slash command: open, status, help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers.guard import guarded
from handlers.parsing import BadInput, Help, Open, Status, parse_command
from playbooks.engine import AlreadyOpen, Engine, Opened, OpenFailed

Links = Callable[[str, str], str]
HelpText = Callable[[], str]
StatusText = Callable[[], str]


def register(app: App, *, engine: Engine, command: str, help_text: HelpText,
             status_text: StatusText, link: Links) -> None:
    """Register the slash command's ack and work functions."""

    def ack_command(ack: Ack, body: dict[str, Any]) -> None:
        try:
            parsed = parse_command(str(body.get("text", "")), command)
        except BadInput as exc:
            ack(text=str(exc))
            return
        if isinstance(parsed, Help):
            ack(text=help_text())
        elif isinstance(parsed, Open):
            ack(text=f"Opening an incident for `{parsed.instance_id}`…")
        else:
            ack()

    @guarded(engine, "command")
    def work(body: dict[str, Any], respond: Respond) -> None:
        user = str(body.get("user_id", ""))
        try:
            parsed = parse_command(str(body.get("text", "")), command)
        except BadInput as exc:
            engine.record(action="command", actor=user or "?", outcome="rejected",
                          detail=f"{str(body.get('text', ''))[:200]!r}: {exc}")
            return
        if isinstance(parsed, Status):
            respond(text=status_text(), response_type="ephemeral")
        elif isinstance(parsed, Open):
            _open(engine, parsed, user, respond, link)

    app.command(command)(ack=ack_command, lazy=[work])


def _open(engine: Engine, parsed: Open, user: str, respond: Respond, link: Links) -> None:
    outcome = engine.open_incident(instance_id=parsed.instance_id, actor=user,
                                   reason=parsed.reason)
    if isinstance(outcome, OpenFailed):
        respond(text=f":x: {outcome.message}", response_type="ephemeral")
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
