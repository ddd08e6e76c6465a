"""/ir open and the Isolate button through the FastAPI app, signed, with fake Slack and moto."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aws.quarantine_groups import QUARANTINE_NAME
from bot.deps import Deps
from storage import audit
from storage.models import StepRun
from tests.aws_world import World, group_by_name, interface_groups
from tests.conftest import open_incident as _open
from tests.harness import ALICE, BOB, CHANNEL, SECRET, SlackDriver, blocks_text
from tests.signing import sign, slash_command


def test_open_posts_root_message_with_summary_and_buttons(driver: SlackDriver,
                                                          world: World) -> None:
    _ts, root = _open(driver, world)
    text = blocks_text(root)
    for expected in (world.instance_id, "web-1", "t3.micro", "running", world.vpc_id,
                     world.subnet_id, world.web_sg, "123456789012", "us-east-1",
                     "GuardDuty C&amp;C finding", f"<@{ALICE}>", "IR-"):
        assert expected in text, expected
    assert "step:isolate" in text
    assert root["channel"] == CHANNEL


def test_isolate_click_contains_instance_and_reports_in_thread(
        driver: SlackDriver, world: World, clients: dict[str, Any], deps: Deps) -> None:
    ts, _root = _open(driver, world)
    response, _name = driver.click("step:isolate", message_ts=ts)
    assert response.status_code == 200

    results = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "isolated" in m.get("text", "")])
    result_text = blocks_text(results[0])
    for eni in world.eni_ids:
        assert eni in result_text
    assert "verified" in result_text and "no inbound and no outbound rules" in result_text

    ec2 = clients["ec2"]
    quarantine = group_by_name(ec2, world.vpc_id, QUARANTINE_NAME)
    assert all(interface_groups(ec2, e) == [quarantine["GroupId"]] for e in world.eni_ids)

    # The root message went from the button to "Isolating… (by @alice)" to done.
    updates = driver.slack.wait_for(lambda: [
        blocks_text(c.args) for c in driver.slack.calls_to("chat.update")
        if len(driver.slack.calls_to("chat.update")) >= 2])
    assert f"Isolating\\u2026* (by <@{ALICE}>)" in updates[0], updates[0]
    assert "step:isolate" not in updates[0]
    final = blocks_text(driver.root()[1])
    assert "step:isolate" not in final and "done by" in final and "contained" in final

    incident_id = next(iter(deps.engine.open_incidents())).id
    actions = [(e.action, e.outcome) for e in audit.events_for(deps.sessions,
                                                              incident_id=incident_id)]
    assert actions == [("incident.open", "succeeded"), ("step.request", "accepted"),
                       ("step.start", "started"), ("step.result", "succeeded")]
    result_row = audit.events_for(deps.sessions, incident_id=incident_id)[-1]
    assert len(result_row.request_ids) >= 8
    assert audit.verify(deps.sessions).ok


def test_second_click_runs_nothing_and_says_who(driver: SlackDriver, world: World,
                                                deps: Deps) -> None:
    ts, root = _open(driver, world)
    button = driver.click("step:isolate", message_ts=ts)  # noqa: F841 (first click)
    driver.slack.wait_for(lambda: any("isolated" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    from tests.signing import buttons
    stale = buttons(root)["step:isolate"]  # Bob clicks the button on his stale copy
    _resp, name = driver.click("step:isolate", message_ts=ts, user=BOB, button=stale)
    reply = driver.wait_reply(name, "already done by")
    assert f"<@{ALICE}>" in reply and "Nothing was run" in reply
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 1


def test_concurrent_clicks_run_isolation_once(driver: SlackDriver, world: World,
                                              deps: Deps) -> None:
    ts, root = _open(driver, world)
    from tests.signing import buttons
    button = buttons(root)["step:isolate"]
    names = [driver.click("step:isolate", message_ts=ts, user=u, button=button)[1]
             for u in (ALICE, BOB, ALICE)]
    driver.slack.wait_for(lambda: any("isolated" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    refusals = driver.slack.wait_for(lambda: [n for n in names if any(
        "already" in t for t in driver.replies(n))] if sum(
        1 for n in names if any("already" in t for t in driver.replies(n))) == 2 else None)
    assert len(refusals) == 2
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 1
    results = [m for m in driver.slack.thread_messages(CHANNEL, ts)
               if "isolated" in m.get("text", "")]
    assert len(results) == 1


def test_second_open_points_to_existing_thread(driver: SlackDriver, world: World) -> None:
    ts, _root = _open(driver, world)
    _resp, name = driver.command(f"open {world.instance_id}", user=BOB)
    reply = driver.wait_reply(name, "already has an open incident")
    assert "IR-" in reply and f"p{ts.replace('.', '')}" in reply
    assert len([c for c in driver.slack.calls_to("chat.postMessage")
                if not c.args.get("thread_ts")]) == 1


@pytest.mark.parametrize("text, expected", [
    ("open", "Which instance?"),
    ("open not-an-id", "is not an EC2 instance id"),
    ("open i-123", "is not an EC2 instance id"),
    ("frobnicate", "I don't know `frobnicate`"),
])
def test_bad_command_text_gets_a_clear_message(driver: SlackDriver, deps: Deps, text: str,
                                               expected: str) -> None:
    response, _name = driver.command(text)
    assert response.status_code == 200 and expected in response.text
    time.sleep(0.3)
    assert driver.slack.calls_to("chat.postMessage") == []
    assert deps.engine.open_incidents() == []


def test_unknown_instance_is_reported_and_nothing_created(driver: SlackDriver, deps: Deps,
                                                          world: World) -> None:
    _resp, name = driver.command("open i-0123456789abcdef0")
    reply = driver.wait_reply(name, "No instance")
    assert "i-0123456789abcdef0" in reply and "Nothing was opened" in reply
    assert deps.engine.open_incidents() == []
    assert driver.slack.calls_to("chat.postMessage") == []


def test_help_and_status(driver: SlackDriver, world: World) -> None:
    response, _ = driver.command("help")
    assert "open <instance-id>" in response.text and "Isolate" in response.text
    _resp, name = driver.command("status")
    assert "No open incidents" in driver.wait_reply(name)
    ts, _root = _open(driver, world)
    _resp, name = driver.command("status")
    reply = driver.wait_reply(name, "Open incidents")
    assert world.instance_id in reply and f"p{ts.replace('.', '')}" in reply


def test_forged_and_stale_requests_get_401(driver: SlackDriver, world: World) -> None:
    body = slash_command(text=f"open {world.instance_id}", user=ALICE, channel=CHANNEL,
                         response_url=driver.slack.response_url("x"))
    forged = sign("not-the-secret", body)
    assert driver.http.post("/slack/events", content=body, headers=forged).status_code == 401
    stale = sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert driver.http.post("/slack/events", content=body, headers=stale).status_code == 401
    time.sleep(0.3)
    # Only the start-up resolution of user groups reached Slack.
    assert {c.method for c in driver.slack.calls} <= {"usergroups.users.list"}
    assert driver.slack.responses == []


def test_tampered_button_value_is_refused(driver: SlackDriver, world: World,
                                          deps: Deps) -> None:
    ts, root = _open(driver, world)
    from tests.signing import buttons
    button = dict(buttons(root)["step:isolate"])
    button["value"] = '{"incident":"IR-1999-0001","step":"isolate"}'
    _resp, name = driver.click("step:isolate", message_ts=ts, button=button)
    assert "There is no incident IR-1999-0001" in driver.wait_reply(name, "Nothing")
    button["value"] = "not json"
    _resp, name = driver.click("step:isolate", message_ts=ts, button=button)
    assert "not valid" in driver.wait_reply(name, "Nothing")
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 0
    rejected = [e for e in audit.events_for(deps.sessions, incident_id="IR-1999-0001")]
    assert rejected == []  # unknown incidents are audited without an incident id
    assert audit.verify(deps.sessions).ok


def test_a_payload_nested_too_deeply_or_not_an_object_is_refused(driver: SlackDriver) -> None:
    import urllib.parse

    deep = "[" * 100_000 + "]" * 100_000
    # Signed, but too deep for the parser or not an object: Bolt would crash on them.
    for payload, said in ((deep, "nested too deeply"), ("[]", "malformed"),
                          ('"text"', "malformed"), ("17", "malformed")):
        body = "payload=" + urllib.parse.quote(payload)
        response = driver.http.post("/slack/events", content=body, headers=sign(SECRET, body))
        assert response.status_code == 400 and said in response.text, payload[:10]
    assert driver.slack.responses == []


def test_healthz(driver: SlackDriver) -> None:
    response = driver.http.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"




def test_home_tab_lists_open_incidents(driver: SlackDriver, world: World) -> None:
    import json as _json
    _open(driver, world)
    body = _json.dumps({
        "type": "event_callback", "team_id": "T0TEAM", "api_app_id": "A0IRBOT",
        "event_id": "Ev01", "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": ALICE, "tab": "home",
                  "channel": "D0ALICE", "event_ts": str(time.time())},
    })
    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
    assert driver.http.post("/slack/events", content=body, headers=headers).status_code == 200
    published = driver.slack.wait_for(lambda: driver.slack.calls_to("views.publish"))
    assert published[0].args["user_id"] == ALICE
    assert world.instance_id in _json.dumps(published[0].args["view"])


def test_aws_unreachable_is_reported_and_nothing_created(
        driver: SlackDriver, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    from aws.session import AwsFactory
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead}")
    deps.engine.aws = AwsFactory(default_region="us-east-1")
    _resp, name = driver.command("open i-0123456789abcdef0")
    reply = driver.wait_reply(name, "Nothing was opened", timeout=60)
    assert "AWS is not reachable" in reply
    assert deps.engine.open_incidents() == []
    rows = audit.events_for(deps.sessions, incident_id="")  # none tied to an incident
    assert rows == []
    assert audit.verify(deps.sessions).ok


def test_root_post_failure_is_told_and_retried(driver: SlackDriver, world: World,
                                               deps: Deps) -> None:
    driver.slack.fail_methods["chat.postMessage"] = "not_in_channel"
    _resp, name = driver.command(f"open {world.instance_id}")
    assert "could not be posted" in driver.wait_reply(name, "could not be posted")
    del driver.slack.fail_methods["chat.postMessage"]
    _resp, name = driver.command(f"open {world.instance_id}")
    reply = driver.wait_reply(name, "already has an open incident")
    assert "Go to the thread" in reply
    ts, root = driver.root()
    assert world.instance_id in blocks_text(root)
    (incident,) = deps.engine.open_incidents()
    assert incident.root_ts == ts


def test_slack_rate_limit_is_waited_out(driver: SlackDriver, world: World) -> None:
    driver.slack.rate_limits["chat.postMessage"] = 1
    _open(driver, world)
    limited = [c for c in driver.slack.calls if c.method == "chat.postMessage#429"]
    posted = driver.slack.calls_to("chat.postMessage")
    assert len(limited) == 1 and len(posted) == 1
    assert posted[0].at - limited[0].at >= 0.9  # waited for Retry-After


def test_a_crash_in_a_listener_reaches_the_user_and_the_audit(
        driver: SlackDriver, deps: Deps, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(**_: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(deps.engine, "open_incident", explode)
    _resp, name = driver.command(f"open {world.instance_id}")
    reply = driver.wait_reply(name, "unexpected error")
    assert "ref `" in reply
    rows = _all_rows(deps)
    assert rows[-1].outcome == "error" and "database on fire" in rows[-1].detail


def test_a_crash_inside_a_step_fails_it_visibly_and_allows_retry(
        driver: SlackDriver, deps: Deps, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import playbooks.isolate

    ts, _root = _open(driver, world)
    monkeypatch.setattr(playbooks.isolate, "isolate",
                        lambda *a, **k: (_ for _ in ()).throw(KeyError("boom")))
    driver.click("step:isolate", message_ts=ts)
    failed = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts)
        if "failed unexpectedly" in m.get("text", "")])
    assert "KeyError" in failed[0]["text"]
    root = driver.slack.wait_for(lambda: "Retry Isolate" in blocks_text(driver.root()[1])
                                 and driver.root()[1])
    assert "failed" in blocks_text(root)
    monkeypatch.undo()
    driver.click("step:isolate", message_ts=ts, user=BOB)
    driver.slack.wait_for(lambda: any("isolated" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    results = [e.outcome for e in _all_rows(deps) if e.action == "step.result"]
    assert results == ["failed", "succeeded"]


def _all_rows(deps: Deps) -> list[Any]:
    from sqlalchemy import select

    from storage.models import AuditEvent
    with deps.sessions() as session:
        return list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def test_healthz_is_503_when_the_database_does_not_answer(driver: SlackDriver, deps: Deps,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from storage.db import make_engine
    monkeypatch.setattr(deps, "db", make_engine(
        "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"))
    response = driver.http.get("/healthz")
    assert response.status_code == 503 and response.json()["database"] == "down"
