"""POST /aws/guardduty: findings as EventBridge delivers them open (or add to) incidents."""

from __future__ import annotations

from typing import Any

import pytest

from bot.deps import Deps
from storage.models import AuditEvent, Finding
from tests.aws_world import World
from tests.guardduty_events import TOKEN, ec2_event, fixture, post_finding
from tests.harness import CHANNEL, SlackDriver, blocks_text


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    return {"IRBOT_INTAKE_TOKEN": TOKEN}


def _ec2_event(world: World, **kwargs: Any) -> dict[str, Any]:
    return ec2_event(world.instance_id, **kwargs)


def _post(driver: SlackDriver, body: Any, token: str = TOKEN) -> Any:
    return post_finding(driver.http, body, token)


def test_intake_refuses_what_is_not_a_finding(driver: SlackDriver, world: World) -> None:
    assert _post(driver, {"a": 1}, token="wrong-token").status_code == 401
    assert driver.http.post("/aws/guardduty", content=b"{}").status_code == 401
    bad_json = _post(driver, b"{not json")
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.json()["error"]
    shape = _post(driver, {"detail-type": "EC2 Instance State-change", "detail": {}})
    assert shape.status_code == 400 and "GuardDuty Finding" in shape.json()["error"]
    no_instance = _ec2_event(world)
    no_instance["detail"]["resource"]["instanceDetails"]["instanceId"] = "sg-123"
    assert _post(driver, no_instance).status_code == 400
    assert _post(driver, b"[" + b"1," * 140_000 + b"1]").status_code == 413
    deep = _post(driver, b"[" * 100_000 + b"]" * 100_000)  # deeper than json.loads goes
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
    assert driver.slack.calls_to("chat.postMessage") == []


def test_a_finding_opens_one_incident_and_resends_go_to_its_thread(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    accepted = _post(driver, _ec2_event(world))
    assert accepted.status_code == 202 and accepted.json()["status"] == "accepted"
    ts, root = driver.wait_root()
    text = blocks_text(root)
    assert world.instance_id in text and "Backdoor:EC2/C\\u0026CActivity.B!DNS" not in text
    assert "Backdoor:EC2/C&amp;CActivity.B!DNS" in text and "High 8" in text
    assert "[sample]" in text and "step:isolate" in text
    (incident,) = deps.engine.open_incidents()
    assert incident.opened_by == "guardduty"

    assert _post(driver, _ec2_event(world, count=3)).status_code == 202
    driver.slack.wait_for(lambda: any("seen 3 times" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    assert _post(driver, _ec2_event(world, finding_id="f-2", severity=5.0)).status_code == 202
    driver.slack.wait_for(lambda: "Medium 5" in blocks_text(driver.root()[1]))
    assert len(deps.engine.open_incidents()) == 1
    with deps.sessions() as session:
        rows = {f.id: f for f in session.query(Finding)}
    assert rows["f-1"].count == 3 and rows["f-1"].incident_id == incident.id
    assert rows["f-2"].incident_id == incident.id


def test_noise_and_non_ec2_findings(driver: SlackDriver, deps: Deps, world: World) -> None:
    low = _post(driver, _ec2_event(world, finding_id="f-low", severity=2.0))
    assert low.status_code == 202 and "below IRBOT_MIN_SEVERITY" in low.json()["reason"]
    archived = _ec2_event(world, finding_id="f-arch")
    archived["detail"]["service"]["archived"] = True
    assert _post(driver, archived).json()["reason"] == "archived"
    iam = fixture("cloud-custodian_iam-duty-event_eventbridge-envelope.json")
    iam["detail"]["severity"] = 5
    assert _post(driver, iam).status_code == 202
    notice = driver.slack.wait_for(lambda: driver.slack.calls_to("chat.postMessage"))
    assert "Not about an EC2 instance" in notice[0].args["text"]
    assert "thread_ts" not in notice[0].args
    assert deps.engine.open_incidents() == []


def test_a_bare_finding_is_accepted_too(driver: SlackDriver, deps: Deps, world: World) -> None:
    finding = fixture("aws-samples_automated-response_guardduty_ec2_event.json")
    finding["accountId"] = "123456789012"
    finding["severity"] = 7
    finding["resource"]["instanceDetails"]["instanceId"] = world.instance_id
    assert _post(driver, finding).status_code == 202
    _ts, root = driver.wait_root()
    assert deps.engine.open_incidents()[0].instance_id == world.instance_id
    # The root message carries the finding in full: what was seen, when, how often.
    text = blocks_text(root)
    for expected in ("*Canary:EC2/Stateless.IntegTest*", "High 7", "account 123456789012",
                     "us-east-1", "*Seen:* remote IP 0.0.0.0 (GeneratedFindingCityName, "
                     "United States); outbound remote port 22 local port 2000 TCP",
                     "*First seen* 2017-10-31 23:16:23 UTC", "*last seen* 2017-10-31",
                     "*count* 1"):
        assert expected in text, expected


def test_type_patterns_and_policy() -> None:
    from handlers.findings import parse_finding
    from playbooks.findings import FindingPolicy, skip_reason

    event = fixture("cloud-custodian_ec2-duty-event_eventbridge-envelope.json")
    finding = parse_finding(event)  # Backdoor:EC2/C&CActivity.B!DNS, severity 5
    assert skip_reason(finding, FindingPolicy()) == ""
    assert skip_reason(finding, FindingPolicy(include=("Recon:*",))).startswith("type not in")
    assert skip_reason(finding, FindingPolicy(include=("Backdoor:EC2/*",))) == ""
    assert skip_reason(finding, FindingPolicy(exclude=("*C&CActivity*",))).startswith(
        "type in IRBOT_FINDING_TYPES_EXCLUDE")
    iam = parse_finding(fixture("cloud-custodian_iam-duty-event_eventbridge-envelope.json"))
    assert skip_reason(iam, FindingPolicy(min_severity=0, non_ec2="ignore")).startswith(
        "not about an EC2 instance")


def test_findings_for_an_instance_that_cannot_be_opened_give_one_notice(
        driver: SlackDriver, deps: Deps) -> None:
    """A burst for an instance irbot cannot find must not flood the channel: one notice,
    and an audit row for every finding."""
    missing = "i-0000000000000dead"
    for n in range(6):
        assert _post(driver, ec2_event(missing, finding_id=f"gone-{n}")).status_code == 202
    assert deps.intake.wait_idle(30)
    notices = [c.args.get("text", "") for c in driver.slack.calls_to("chat.postMessage")]
    assert len(notices) == 1 and missing in notices[0]
    assert "later findings for it" in notices[0]
    with deps.sessions() as session:
        failed = session.query(AuditEvent).filter_by(action="incident.open",
                                                     outcome="failed").count()
        assert session.query(Finding).count() == 6
    assert failed == 6
