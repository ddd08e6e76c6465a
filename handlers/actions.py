"""Step buttons in the incident thread: validate the click, hand it to the engine."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.ids import ActionId
from handlers.guard import guarded
from handlers.parsing import BadInput, parse_step_click
from playbooks.engine import Engine, Refused


def register(app: App, *, engine: Engine) -> None:
    """Register the step buttons' ack and work functions."""
    prefix = ActionId.STEP_PREFIX.value

    def ack_click(ack: Ack) -> None:
        ack()

    @guarded(engine, "step.click")
    def work(body: dict[str, Any], respond: Respond) -> None:
        try:
            click = parse_step_click(body, prefix)
        except BadInput as exc:
            user = str((body.get("user") or {}).get("id", "?"))[:64]
            engine.record(action="step.click", actor=user, outcome="rejected", detail=str(exc))
            respond(text=f":x: {exc} Nothing was done.", response_type="ephemeral",
                    replace_original=False)
            return
        outcome = engine.request_step(incident_id=click.incident_id, step_id=click.step_id,
                                      actor=click.user_id)
        if isinstance(outcome, Refused):
            respond(text=f":no_entry: {outcome.reason} Nothing was run.",
                    response_type="ephemeral", replace_original=False)

    app.action(re.compile("^" + re.escape(prefix)))(ack=ack_click, lazy=[work])
