"""Who may press which button: responders, channels, approvals and the two-person rule,
through the app over signed HTTP with the fake Slack and moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.deps import Deps
from storage.models import Approval, AuditEvent, StepRun
from tests.aws_world import World
from tests.conftest import open_incident
from tests.harness import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    MALLORY,
    SECRET,
    SlackDriver,
    blocks_text,
)
from tests.signing import block_action, buttons, sign, slash_command


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    return {"IRBOT_APPROVAL_REQUIRED": "isolate", "IRBOT_EXTRA_CHANNELS": "C0WARROOM"}


def _rows(deps: Deps) -> list[AuditEvent]:
    with deps.sessions() as session:
        return list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def _runs(deps: Deps) -> list[StepRun]:
    with deps.sessions() as session:
        return list(session.execute(select(StepRun).order_by(StepRun.id)).scalars())


def _thread(driver: SlackDriver, ts: str, contains: str) -> list[dict[str, Any]]:
    return [m for m in driver.slack.thread_messages(CHANNEL, ts)
            if contains in m.get("text", "") or contains in blocks_text(m)]


def _request(driver: SlackDriver, world: World, user: str = ALICE
             ) -> tuple[str, str, dict[str, Any]]:
    """Open an incident, ask for Isolate; return root ts, approval message ts, message."""
    ts, _root = open_incident(driver, world)
    driver.click("step:isolate", message_ts=ts, user=user)
    (request,) = driver.slack.wait_for(lambda: _thread(driver, ts, "awaits approval"))
    approval_ts = next(k[1] for k, m in driver.slack.messages.items()
                       if m.get("thread_ts") == ts and "awaits approval" in m.get("text", ""))
    return ts, approval_ts, request


def _click_approval(driver: SlackDriver, approval_ts: str, action: str, user: str
                    ) -> str:
    _resp, name = driver.click(action, message_ts=approval_ts, user=user)
    return name


def test_non_responder_command_and_click_are_refused(driver: SlackDriver, deps: Deps,
                                                     world: World) -> None:
    response, name = driver.command(f"open {world.instance_id}", user=MALLORY)
    assert "you are not a responder for irbot" in response.text
    driver.slack.wait_for(lambda: any(r.action == "incident.open" and r.outcome == "denied"
                                      for r in _rows(deps)))
    assert deps.engine.open_incidents() == []

    ts, _root = open_incident(driver, world)
    _resp, name = driver.click("step:isolate", message_ts=ts, user=MALLORY)
    assert "not a responder" in driver.wait_reply(name, "not a responder")
    denied = [r for r in _rows(deps) if r.outcome == "denied" and r.actor == MALLORY]
    assert {r.action for r in denied} == {"incident.open", "step.request"}
    assert _runs(deps) == []


def test_group_members_are_responders(driver: SlackDriver, deps: Deps, world: World) -> None:
    response, name = driver.command(f"open {world.instance_id}", user=CAROL)
    assert response.status_code == 200
    assert "Opened" in driver.wait_reply(name, "Opened")


def test_commands_and_clicks_from_other_channels_are_refused(driver: SlackDriver, deps: Deps,
                                                             world: World) -> None:
    body = slash_command(text=f"open {world.instance_id}", user=ALICE, channel="C0RANDOM",
                         response_url=driver.slack.response_url("elsewhere"))
    response = driver.http.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert "irbot only acts in" in response.text and "C0WARROOM" in response.text
    driver.slack.wait_for(lambda: any(r.action == "command" and r.outcome == "denied"
                                      for r in _rows(deps)))
    assert deps.engine.open_incidents() == []

    ts, root = open_incident(driver, world)
    button = buttons(root)["step:isolate"]
    body = block_action(button=button, user=ALICE, channel="C0RANDOM", message_ts=ts,
                        response_url=driver.slack.response_url("elsewhere2"))
    driver.http.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert "only acts in" in driver.wait_reply("elsewhere2", "only acts in")
    assert _runs(deps) == []


def test_request_posts_plan_with_dry_run_and_asks_why(driver: SlackDriver, deps: Deps,
                                                      world: World) -> None:
    _ts, _approval_ts, request = _request(driver, world)
    text = blocks_text(request)
    assert f"<@{ALICE}> asks to run *Isolate*" in text
    for eni in world.eni_ids:
        assert eni in text
    assert "ec2:ModifyNetworkInterfaceAttribute" in text and "would succeed" in text
    assert {"approval:approve", "approval:deny"} <= set(buttons(request))
    modal = driver.slack.wait_for(lambda: driver.slack.calls_to("views.open"))[0].args["view"]
    assert modal["callback_id"] == "approval-reason"
    root = blocks_text(driver.root()[1])
    assert "awaiting approval" in root and "step:isolate" not in root
    (run,) = _runs(deps)
    assert run.state == "awaiting_approval"


def test_requester_cannot_approve_own_request(driver: SlackDriver, deps: Deps,
                                              world: World) -> None:
    _ts, approval_ts, _request_msg = _request(driver, world)
    name = _click_approval(driver, approval_ts, "approval:approve", ALICE)
    assert "two-person rule" in driver.wait_reply(name, "two-person")
    (run,) = _runs(deps)
    assert run.state == "awaiting_approval"
    refused = [r for r in _rows(deps) if r.action == "approval.approve"]
    assert refused[-1].outcome == "denied" and refused[-1].actor == ALICE


def test_non_approver_cannot_approve(driver: SlackDriver, deps: Deps, world: World,
                                     fake_slack: Any) -> None:
    fake_slack.usergroups["S0APPROVE"] = []  # Carol is a responder but not an approver now
    deps.access.directory._cache.clear()
    _ts, approval_ts, _msg = _request(driver, world)
    name = _click_approval(driver, approval_ts, "approval:approve", CAROL)
    assert "not an approver" in driver.wait_reply(name, "not an approver")
    assert _runs(deps)[0].state == "awaiting_approval"


def test_group_approver_approves_and_the_step_runs(driver: SlackDriver, deps: Deps,
                                                   world: World) -> None:
    ts, approval_ts, request = _request(driver, world)
    stale = buttons(request)["approval:approve"]
    _click_approval(driver, approval_ts, "approval:approve", CAROL)
    (result,) = driver.slack.wait_for(lambda: _thread(driver, ts, "is isolated"))
    assert f"approved by <@{CAROL}>" in blocks_text(result)
    assert f"requested by <@{ALICE}>" in blocks_text(result)
    approval_msg = driver.slack.wait_for(lambda: "Result:" in blocks_text(
        driver.slack.messages[(CHANNEL, approval_ts)]) and driver.slack.messages[
        (CHANNEL, approval_ts)])
    assert f"Approved by <@{CAROL}>, requested by <@{ALICE}>" in blocks_text(approval_msg)
    assert "is isolated" in blocks_text(approval_msg)
    assert "approval:approve" not in blocks_text(approval_msg)
    (run,) = _runs(deps)
    assert run.state == "succeeded" and run.approved_by == CAROL
    start = next(r for r in _rows(deps) if r.action == "step.start")
    assert (start.actor, start.approver) == (ALICE, CAROL)
    approved = next(r for r in _rows(deps) if r.action == "approval.approved")
    assert approved.actor == CAROL and approved.params["requested_by"] == ALICE

    # The approval is single-use: a second Approve does nothing.
    _resp, name = driver.click("approval:approve", message_ts=approval_ts, user=BOB,
                               button=stale)
    assert f"already approved by <@{CAROL}>" in driver.wait_reply(name, "already")
    assert len(_runs(deps)) == 1
    assert len(_thread(driver, ts, "is isolated")) == 1


def test_concurrent_approvals_run_the_step_once(driver: SlackDriver, deps: Deps,
                                                world: World) -> None:
    ts, approval_ts, request = _request(driver, world)
    button = buttons(request)["approval:approve"]
    names = [driver.click("approval:approve", message_ts=approval_ts, user=u,
                          button=button)[1] for u in (BOB, CAROL, BOB)]
    driver.slack.wait_for(lambda: _thread(driver, ts, "is isolated"))
    driver.slack.wait_for(lambda: sum(1 for n in names if any(
        "already approved" in t for t in driver.replies(n))) == 2)
    assert len(_thread(driver, ts, "is isolated")) == 1
    assert [r.state for r in _runs(deps)] == ["succeeded"]


def test_expired_approval_cannot_be_used_and_can_be_asked_again(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    ts, approval_ts, _request_msg = _request(driver, world)
    with deps.sessions.begin() as session:
        session.execute(update(Approval).values(expires_at=Approval.requested_at))
    name = _click_approval(driver, approval_ts, "approval:approve", BOB)
    assert "expired" in driver.wait_reply(name, "expired")
    assert _runs(deps)[0].state == "expired"
    assert any(r.action == "approval.expired" for r in _rows(deps))
    assert "Expired" in blocks_text(driver.slack.messages[(CHANNEL, approval_ts)])
    # The step's button is back; asking again makes a new request.
    root = driver.slack.wait_for(lambda: "step:isolate" in blocks_text(driver.root()[1])
                                 and driver.root()[1])
    assert "expired" in blocks_text(root)
    driver.click("step:isolate", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: len(_thread(driver, ts, "awaits approval (pending)")) == 1
                          and len(_runs(deps)) == 2)
    assert [r.state for r in _runs(deps)] == ["expired", "awaiting_approval"]


def test_deny_stops_the_step_and_records_why(driver: SlackDriver, deps: Deps,
                                             world: World) -> None:
    ts, approval_ts, _msg = _request(driver, world)
    _click_approval(driver, approval_ts, "approval:deny", BOB)
    driver.slack.wait_for(lambda: "Denied by" in blocks_text(
        driver.slack.messages[(CHANNEL, approval_ts)]))
    (run,) = _runs(deps)
    assert run.state == "denied"
    modal = driver.slack.wait_for(lambda: [c for c in driver.slack.calls_to("views.open")
                                           if "deny" in json.dumps(c.args["view"])])
    meta = modal[-1].args["view"]["private_metadata"]
    _submit_reason(driver, BOB, meta, "not during the board demo")
    driver.slack.wait_for(lambda: "not during the board demo" in blocks_text(
        driver.slack.messages[(CHANNEL, approval_ts)]))
    reason = next(r for r in _rows(deps) if r.action == "approval.reason")
    assert reason.actor == BOB and reason.detail == "not during the board demo"
    denied = next(r for r in _rows(deps) if r.action == "approval.denied")
    assert denied.actor == BOB and denied.params["requested_by"] == ALICE
    assert _thread(driver, ts, "is isolated") == []


def test_requester_reason_from_the_modal_reaches_the_request(driver: SlackDriver, deps: Deps,
                                                             world: World) -> None:
    _ts, approval_ts, _msg = _request(driver, world)
    modal = driver.slack.wait_for(lambda: driver.slack.calls_to("views.open"))[0]
    _submit_reason(driver, ALICE, modal.args["view"]["private_metadata"],
                   "C2 beacon confirmed by <b>GuardDuty</b>")
    driver.slack.wait_for(lambda: "C2 beacon confirmed" in blocks_text(
        driver.slack.messages[(CHANNEL, approval_ts)]))
    assert "&lt;b&gt;GuardDuty" in blocks_text(driver.slack.messages[(CHANNEL, approval_ts)])
    # Someone else cannot put words in the requester's mouth.
    _submit_reason(driver, BOB, modal.args["view"]["private_metadata"], "forged")
    driver.slack.wait_for(lambda: any(r.action == "approval.reason" and r.outcome == "denied"
                                      for r in _rows(deps)))
    assert "forged" not in blocks_text(driver.slack.messages[(CHANNEL, approval_ts)])


def test_home_tab_shows_approvals_waiting_for_the_viewer(driver: SlackDriver, deps: Deps,
                                                         world: World) -> None:
    _request(driver, world)
    for user in (BOB, ALICE):
        body = json.dumps({
            "type": "event_callback", "team_id": "T0TEAM", "api_app_id": "A0IRBOT",
            "event_id": f"Ev{user}", "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "tab": "home"},
        })
        headers = {**sign(SECRET, body), "Content-Type": "application/json"}
        driver.http.post("/slack/events", content=body, headers=headers)
    views = driver.slack.wait_for(lambda: len(driver.slack.calls_to("views.publish")) == 2
                                  and driver.slack.calls_to("views.publish"))
    by_user = {c.args["user_id"]: json.dumps(c.args["view"]) for c in views}
    assert "Approvals waiting for you (1)" in by_user[BOB]
    assert "Approvals waiting for you (0)" in by_user[ALICE]  # her own request
    assert world.instance_id in by_user[ALICE]  # she opened it


def _submit_reason(driver: SlackDriver, user: str, private_metadata: str, reason: str) -> None:
    from urllib.parse import urlencode
    payload = {
        "type": "view_submission", "team": {"id": "T0TEAM"},
        "user": {"id": user}, "api_app_id": "A0IRBOT", "trigger_id": "1.2.3",
        "view": {"id": "V1", "type": "modal", "callback_id": "approval-reason",
                 "private_metadata": private_metadata,
                 "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                            "value": reason}}}}},
    }
    body = urlencode({"payload": json.dumps(payload)})
    response = driver.http.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert response.status_code == 200
