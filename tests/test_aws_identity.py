"""When irbot assumes a role, CloudTrail sees the incident and the people behind the call."""

from __future__ import annotations

from typing import Any

import pytest
from moto.sts.models import sts_backends

from aws.session import AwsFactory, CallLog, Identity
from bot.deps import Deps
from tests.aws_world import World
from tests.conftest import open_incident
from tests.harness import ALICE, CAROL, CHANNEL, SlackDriver, blocks_text

ROLE = "arn:aws:iam::123456789012:role/irbot-responder"


def test_session_name_and_tags_carry_incident_requester_and_approver(moto: None) -> None:
    factory = AwsFactory(default_region="us-east-1", role_arn=ROLE)
    sent: list[dict[str, Any]] = []
    factory._session.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: sent.append(dict(params)))
    log = CallLog()
    aws = factory.for_action(log, region=None, identity=Identity(
        incident_id="IR-2026-0007", requester=ALICE, approver=CAROL))
    (params,) = sent
    assert params["RoleSessionName"] == f"irbot-IR-2026-0007-{ALICE}-{CAROL}"
    assert {t["Key"]: t["Value"] for t in params["Tags"]} == {
        "irbot:incident": "IR-2026-0007", "irbot:requester": ALICE, "irbot:approver": CAROL}
    arn = aws.client("sts").get_caller_identity()["Arn"]
    assert arn.endswith(f"assumed-role/irbot-responder/irbot-IR-2026-0007-{ALICE}-{CAROL}")
    assert log.request_ids()  # the AssumeRole call is in the audit record


def test_session_name_is_cut_to_64_characters() -> None:
    name = Identity(incident_id="IR-2026-0001", requester="U" + "A" * 40,
                    approver="W" + "B" * 40).session_name()
    assert len(name) == 64 and name.startswith("irbot-IR-2026-0001-UAAAA")


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    return {"IRBOT_APPROVAL_REQUIRED": "isolate", "IRBOT_ASSUME_ROLE_ARN": ROLE}


def test_approved_step_runs_under_the_tagged_session(driver: SlackDriver, deps: Deps,
                                                     world: World) -> None:
    ts, _root = open_incident(driver, world)
    driver.click("step:isolate", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: any("awaits approval" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    approval_ts = next(k[1] for k, m in driver.slack.messages.items()
                       if m.get("thread_ts") == ts and "awaits approval" in m.get("text", ""))
    driver.click("approval:approve", message_ts=approval_ts, user=CAROL)
    (result,) = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "is isolated" in m.get("text", "")])
    assert CAROL in blocks_text(result)
    sessions = [r.session_name for r in sts_backends["123456789012"]["aws"].assumed_roles]
    incident_id = deps.engine.open_incidents()[0].id
    assert f"irbot-{incident_id}-{ALICE}-{CAROL}" in sessions
