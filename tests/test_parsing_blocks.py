"""Input validation and Block Kit limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot import blocks
from handlers.parsing import BadInput, Help, Open, Status, parse_command, parse_step_click
from playbooks.catalog import EC2_COMPROMISE
from playbooks.model import IncidentView, StepOutcome
from storage.models import Incident, StepRun


def test_commands_parse() -> None:
    assert parse_command("") == Help()
    assert parse_command("HELP") == Help()
    assert parse_command("status") == Status()
    assert parse_command("open I-0123456789ABCDEF0  C2 beacon ") == Open(
        "i-0123456789abcdef0", "C2 beacon")
    assert parse_command("open i-12345678") == Open("i-12345678", "")


@pytest.mark.parametrize("text", ["open", "open i-xyz", "open sg-12345678", "delete all",
                                  "open i-0123456789abcdef0 " + "x" * 501])
def test_bad_commands_are_refused(text: str) -> None:
    with pytest.raises(BadInput):
        parse_command(text)


def _click(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "user": {"id": "U0ALICE"},
        "actions": [{"action_id": "step:isolate",
                     "value": json.dumps({"incident": "IR-2026-0001", "step": "isolate"})}],
    }
    body.update(overrides)
    return body


def test_step_click_validation() -> None:
    click = parse_step_click(_click(), "step:")
    assert (click.incident_id, click.step_id, click.user_id) == ("IR-2026-0001", "isolate",
                                                                 "U0ALICE")
    bad_bodies = [
        _click(user={}),
        _click(actions=[]),
        _click(actions=[{"action_id": "step:isolate", "value": "{"}]),
        _click(actions=[{"action_id": "step:terminate",
                         "value": json.dumps({"incident": "IR-2026-0001", "step": "isolate"})}]),
        _click(actions=[{"action_id": "step:isolate",
                         "value": json.dumps({"incident": "'; drop", "step": "isolate"})}]),
    ]
    for body in bad_bodies:
        with pytest.raises(BadInput):
            parse_step_click(body, "step:")


def _view(lines: int = 0) -> tuple[IncidentView, StepRun, StepOutcome]:
    incident = Incident(id="IR-2026-0001", instance_id="i-0123456789abcdef0",
                        account_id="123456789012", region="us-east-1", vpc_id="vpc-1",
                        status="open", opened_by="U0ALICE", reason="<b>x</b> & y",
                        opened_at=datetime(2026, 12, 3, tzinfo=UTC), instance={"name": "web"})
    run = StepRun(id=1, incident_id=incident.id, step_id="isolate", state="succeeded",
                  requested_by="U0ALICE", result={})
    outcome = StepOutcome(ok=True, headline="done", lines=["y" * 200] * lines)
    return IncidentView(incident, EC2_COMPROMISE.steps, {}), run, outcome


def test_root_message_escapes_and_offers_confirmed_buttons() -> None:
    view, _run, _outcome = _view()
    message = blocks.root_message(view)
    text = json.dumps(message["blocks"])
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in text and "<b>" not in text
    (button,) = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "step:isolate"]
    assert button["confirm"]["confirm"]["text"] == "Isolate"
    assert "triage" in button["confirm"]["text"]["text"]
    assert button["style"] == "danger"


def test_unknown_instance_facts_show_as_dashes() -> None:
    view, _run, _outcome = _view()  # a summary that knows only the name, as from a finding
    fields = json.dumps(blocks.root_message(view)["blocks"], ensure_ascii=False)
    assert "*Type / state*\\n—" in fields and "*VPC / subnet*\\n—" in fields
    assert " / \\n" not in fields and "\\n / " not in fields
    view.incident.instance = {"instance_type": "t3.micro"}
    assert "t3.micro / —" in json.dumps(blocks.root_message(view)["blocks"],
                                             ensure_ascii=False)


def test_long_results_respect_slack_limits() -> None:
    view, run, outcome = _view(lines=2000)
    message = blocks.step_result_message(view, EC2_COMPROMISE.steps[0], run, outcome)
    assert len(message["blocks"]) <= blocks.MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= blocks.SECTION_LIMIT


def test_confirm_dialogs_fit_slack_limits() -> None:
    view, _run, _outcome = _view()
    for step in EC2_COMPROMISE:
        button = blocks.step_button(view.incident, step)
        if "confirm" in button:
            assert len(button["confirm"]["text"]["text"]) <= 300, step.id
            assert len(button["confirm"]["title"]["text"]) <= 100, step.id
