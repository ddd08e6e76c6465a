"""The evidence gate and Terminate through the app: refused until snapshots are completed
and evidence is captured, then approved by a second person and run."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from bot.deps import Deps
from storage.models import AuditEvent, Evidence
from tests.aws_world import World
from tests.conftest import open_incident
from tests.harness import ALICE, BOB, CHANNEL, SlackDriver, blocks_text

BUCKET = "irbot-evidence-test"


@pytest.fixture
def app_extra_env(clients: dict[str, Any]) -> dict[str, str]:
    clients_s3 = __import__("boto3").client("s3", region_name="us-east-1")
    clients_s3.create_bucket(Bucket=BUCKET)
    return {"IRBOT_SNAPSHOT_POLL_SECONDS": "1", "IRBOT_EVIDENCE_BUCKET": BUCKET}


def _thread_has(driver: SlackDriver, ts: str, text: str) -> list[dict[str, Any]]:
    return [m for m in driver.slack.thread_messages(CHANNEL, ts)
            if text in m.get("text", "") or text in blocks_text(m)]


def test_terminate_waits_for_the_evidence_gate(driver: SlackDriver, deps: Deps, world: World,
                                               clients: dict[str, Any]) -> None:
    ts, root = open_incident(driver, world)
    assert {"step:snapshot", "step:evidence", "step:terminate"} <= set(
        b for b in blocks_text(root).split('"') if b.startswith("step:"))

    _resp, name = driver.click("step:terminate", message_ts=ts, user=ALICE)
    refusal = driver.wait_reply(name, "cannot run now")
    assert "Snapshot volumes" in refusal and "metadata" in refusal
    assert "console output" in refusal

    driver.click("step:snapshot", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "Every snapshot is completed"))
    (result,) = _thread_has(driver, ts, "Snapshots requested for 2 of 2")
    for volume in world.volume_ids:
        assert volume in blocks_text(result)

    _resp, name = driver.click("step:terminate", message_ts=ts, user=ALICE)
    refusal = driver.wait_reply(name, "cannot run now")
    assert "Snapshot volumes" not in refusal and "metadata" in refusal

    driver.click("step:evidence", message_ts=ts, user=BOB)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "Evidence captured"))
    def stored() -> list[Evidence]:
        with deps.sessions() as session:
            return list(session.execute(select(Evidence)).scalars())

    items = driver.slack.wait_for(lambda: len(stored()) == 2 and stored())
    files = [f for f in driver.slack.files.values() if f.get("thread_ts") == ts]
    assert {i.kind for i in items} == {"metadata", "console-output"}
    for item in items:
        uploaded = next(f for f in files if item.sha256 in (f.get("comment") or ""))
        assert hashlib.sha256(uploaded["content"]).hexdigest() == item.sha256
        assert f"s3://{BUCKET}/" in item.location
        key = item.location.split(f"s3://{BUCKET}/", 1)[1].split()[0]
        head = __import__("boto3").client("s3", region_name="us-east-1").head_object(
            Bucket=BUCKET, Key=key)
        assert head["Metadata"]["sha256"] == item.sha256
    assert "screenshot" in blocks_text(_thread_has(driver, ts, "Evidence captured")[0])

    # The gate holds now: Terminate asks for approval, Bob approves, it runs.
    driver.click("step:terminate", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "Terminate awaits approval"))
    approval_ts = next(k[1] for k, m in driver.slack.messages.items()
                       if m.get("thread_ts") == ts and "Terminate awaits" in m.get("text", ""))
    _resp, name = driver.click("approval:approve", message_ts=approval_ts, user=ALICE)
    assert "two-person" in driver.wait_reply(name, "two-person")
    driver.click("approval:approve", message_ts=approval_ts, user=BOB)
    (done,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "is terminating"))
    assert "Never try to" in blocks_text(done)
    state = clients["ec2"].describe_instances(InstanceIds=[world.instance_id])[
        "Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
    assert deps.engine.open_incidents()[0].status == "eradicated"
    # The root message no longer calls the instance running: it shows the state read back.
    root = driver.slack.wait_for(lambda: "/ running" not in blocks_text(driver.root()[1])
                                 and driver.root()[1])
    assert "/ shutting-down" in blocks_text(root) or "/ terminated" in blocks_text(root)
    with deps.sessions() as session:
        actions = [r.action for r in session.execute(
            select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert actions.count("evidence.stored") == 2 and "step.follow_up" in actions


def test_lateral_movement_lists_neighbours_and_opens_an_incident_for_one(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    from tests.aws_world import AMI

    ec2 = clients["ec2"]
    sharing = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=world.subnet_id,
                                SecurityGroupIds=[world.web_sg], TagSpecifications=[{
                                    "ResourceType": "instance",
                                    "Tags": [{"Key": "Name", "Value": "web-2"}]}],
                                )["Instances"][0]["InstanceId"]
    other_subnet = ec2.create_subnet(VpcId=world.vpc_id, CidrBlock="10.20.9.0/24")[
        "Subnet"]["SubnetId"]
    lonely = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=other_subnet
                               )["Instances"][0]["InstanceId"]
    ts, _root = open_incident(driver, world)
    driver.click("step:isolate", message_ts=ts)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is isolated"))
    driver.click("step:lateral", message_ts=ts, user=BOB)
    (result,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "other running"))
    text = blocks_text(result)
    # The Auto Scaling group's replacement (launched when Isolate detached the instance)
    # is a neighbour too: it shares only the subnet.
    assert "3 other running instances" in text and "1 share a role" in text
    assert text.index(sharing) < text.index(lonely)  # sharing most first
    assert f"security group {world.web_sg}" in text  # from before isolation
    from tests.signing import buttons

    found = buttons(result)
    assert list(found) == ["followup:open-incident"]
    result_ts = next(k[1] for k, m in driver.slack.messages.items()
                     if m.get("thread_ts") == ts and "other running" in m.get("text", ""))
    _resp, name = driver.click("followup:open-incident", message_ts=result_ts, user=BOB)
    assert "Opened" in driver.wait_reply(name, "Opened")
    opened = {i.instance_id: i for i in deps.engine.open_incidents()}
    assert sharing in opened and "lateral movement" in opened[sharing].reason


def _approve(driver: SlackDriver, ts: str, label: str, user: str) -> None:
    driver.slack.wait_for(lambda: _thread_has(driver, ts, f"{label} awaits approval"))
    approval_ts = next(k[1] for k, m in driver.slack.messages.items()
                       if m.get("thread_ts") == ts and f"{label} awaits" in m.get("text", ""))
    driver.click("approval:approve", message_ts=approval_ts, user=user)


def test_release_undoes_isolation_and_marks_a_false_positive(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    from tests.aws_world import interface_groups

    ts, _root = open_incident(driver, world)
    _resp, name = driver.click("step:release", message_ts=ts)
    assert "a completed Isolate to undo" in driver.wait_reply(name, "cannot run now")
    driver.click("step:isolate", message_ts=ts)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is isolated"))
    driver.click("step:release", message_ts=ts, user=ALICE)
    _approve(driver, ts, "Release (false positive)", BOB)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is released"))
    assert interface_groups(clients["ec2"], world.eni_ids[0]) == [world.web_sg]
    assert deps.engine.open_incidents() == []  # false-positive ends the incident
    root = driver.slack.wait_for(lambda: "false-positive" in blocks_text(driver.root()[1])
                                 and driver.root()[1])
    assert '"actions"' not in blocks_text(root)


def test_close_posts_a_summary_and_refuses_while_steps_are_live(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    ts, _root = open_incident(driver, world)
    driver.click("step:isolate", message_ts=ts)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is isolated"))
    driver.click("step:revoke-credentials", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "Revoke role sessions awaits"))
    incident_id = deps.engine.open_incidents()[0].id

    response, name = driver.command(f"close {incident_id} contained, rebuilt elsewhere")
    assert f"Closing {incident_id}" in response.text
    assert "still has steps in progress" in driver.wait_reply(name, "in progress")

    approval_ts = next(k[1] for k, m in driver.slack.messages.items()
                       if m.get("thread_ts") == ts and "Revoke role" in m.get("text", ""))
    driver.click("approval:deny", message_ts=approval_ts, user=BOB)
    driver.slack.wait_for(lambda: "Denied by" in blocks_text(
        driver.slack.messages[(CHANNEL, approval_ts)]))
    _resp, name = driver.command(f"close {incident_id} contained, rebuilt elsewhere")
    assert f"Closed {incident_id}" in driver.wait_reply(name, "Closed")
    (summary,) = _thread_has(driver, ts, f"{incident_id} closed by")
    text = summary["text"]
    assert "contained, rebuilt elsewhere" in text and "Time to contain" in text
    assert "Isolate: succeeded" in text and "Revoke role sessions: denied" in text
    root = driver.slack.wait_for(lambda: "incident:close" not in blocks_text(
        driver.root()[1]) and driver.root()[1])
    assert ":checkered_flag: closed" in blocks_text(root)
    _resp, name = driver.command(f"close {incident_id}")
    assert "already closed" in driver.wait_reply(name, "already")


def test_harden_fixes_the_instance_and_offers_the_vpc_fixes(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    from tests.aws_world import AMI
    from tests.signing import buttons

    ec2 = clients["ec2"]
    other = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=world.subnet_id
                              )["Instances"][0]["InstanceId"]
    ts, _root = open_incident(driver, world)
    driver.click("step:harden", message_ts=ts)
    (result,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "hardened"))
    text = blocks_text(result)
    assert other in text and f"{world.web_sg} (web): tcp 22-22 from 0.0.0.0/0" in text
    assert "Amazon Inspector EC2 scanning: ENABLED" in text
    options = ec2.describe_instances(InstanceIds=[world.instance_id])["Reservations"][0][
        "Instances"][0]["MetadataOptions"]
    assert options["HttpTokens"] == "required" and options["HttpPutResponseHopLimit"] == 1
    offered = buttons(result)
    assert set(offered) == {"step:harden-imds", "step:harden-ssh"}
    assert offered["step:harden-ssh"]["style"] == "danger" and "confirm" in offered[
        "step:harden-ssh"]

    result_ts = next(k[1] for k, m in driver.slack.messages.items()
                     if m.get("thread_ts") == ts and "hardened" in m.get("text", ""))
    driver.click("step:harden-ssh", message_ts=result_ts, user=BOB)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "Revoked 1 SSH-to-world rules"))
    rules = ec2.describe_security_groups(GroupIds=[world.web_sg])["SecurityGroups"][0][
        "IpPermissions"]
    assert [r["FromPort"] for r in rules] == [443]  # 22 gone, 443 kept
    driver.click("step:harden-imds", message_ts=result_ts, user=BOB)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "IMDSv2 now required on"))
    options = ec2.describe_instances(InstanceIds=[other])["Reservations"][0]["Instances"][0][
        "MetadataOptions"]
    assert options["HttpTokens"] == "required"
    # Offered steps run once, like any other.
    _resp, name = driver.click("step:harden-ssh", message_ts=result_ts, user=ALICE)
    assert "already done by" in driver.wait_reply(name, "already")


def test_rebuild_launches_a_hardened_replacement_and_restores_clean_data(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.aws_world import AMI
    from tests.signing import buttons

    ec2 = clients["ec2"]
    golden = ec2.register_image(Name="golden-2026-12", RootDeviceName="/dev/sda1",
                                BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                      "Ebs": {"VolumeSize": 8}}])["ImageId"]
    deps.engine.step_config["golden_ami"] = golden
    data_volume = world.volume_ids[1]
    clean = ec2.create_snapshot(VolumeId=data_volume, Description="nightly")["SnapshotId"]
    ts, _root = open_incident(driver, world)
    driver.click("step:isolate", message_ts=ts)
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is isolated"))
    driver.click("step:rebuild", message_ts=ts, user=ALICE)
    _approve(driver, ts, "Rebuild", BOB)
    (result,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "Replacement i-"))
    text = blocks_text(result)
    new_id = text.split("Replacement ", 1)[1].split(" ", 1)[0]
    new = ec2.describe_instances(InstanceIds=[new_id])["Reservations"][0]["Instances"][0]
    assert new["ImageId"] == golden and new["ImageId"] != AMI
    assert new["SubnetId"] == world.subnet_id and "KeyName" not in new
    assert new["MetadataOptions"]["HttpTokens"] == "required"
    assert new["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    groups = {g["GroupId"] for g in new["SecurityGroups"]}
    assert world.admin_sg in groups and world.web_sg not in groups  # web opens SSH: a copy
    copy = next(g for g in groups if g != world.admin_sg)
    rules = ec2.describe_security_groups(GroupIds=[copy])["SecurityGroups"][0]["IpPermissions"]
    assert [r["FromPort"] for r in rules] == [443]
    tags = {t["Key"]: t["Value"] for t in new["Tags"]}
    assert tags["irbot:replaces"] == world.instance_id
    assert f"{clean} of {data_volume}" in text and "before the compromise" in text
    assert "24 to 48 hours" in text
    restore = buttons(result)["step:rebuild-restore"]
    assert clean in restore["value"]
    result_ts = next(k[1] for k, m in driver.slack.messages.items()
                     if m.get("thread_ts") == ts and "Replacement i-" in m.get("text", ""))
    driver.click("step:rebuild-restore", message_ts=result_ts, user=BOB, button=restore)
    (restored,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, f"restored from {clean}"))
    volume_id = restored["text"].split(": ", 1)[1].split(" ", 1)[0]
    attached = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"]
    assert attached[0]["InstanceId"] == new_id
    assert deps.engine.open_incidents()[0].status == "recovered"

    # The responder says the compromise began a day earlier: the nightly snapshot is now
    # after it, and restoring it takes the button that says so.
    select = next(e for b in result["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if e["type"] == "static_select")
    _select(driver, result_ts, select, "1 day before")
    (listing,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "0 of 1 backups"))
    assert "AFTER THE COMPROMISE" in blocks_text(listing)
    late = buttons(listing)["step:rebuild-restore"]
    assert late["text"]["text"].startswith("⚠") and '"after_compromise":"1"' in late["value"]
    listing_ts = next(k[1] for k, m in driver.slack.messages.items()
                      if m.get("thread_ts") == ts and "0 of 1 backups" in m.get("text", ""))
    driver.click("step:rebuild-restore", message_ts=listing_ts, user=BOB, button={
        **late, "value": late["value"].replace(',"after_compromise":"1"', "")})
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "was taken after the compromise"))
    driver.click("step:rebuild-restore", message_ts=listing_ts, user=BOB, button=late)
    (warned,) = driver.slack.wait_for(lambda: [
        m for m in _thread_has(driver, ts, f"restored from {clean}")
        if "AFTER the compromise" in blocks_text(m)] or None)
    assert warned


def _select(driver: SlackDriver, message_ts: str, select: dict[str, Any], label: str,
            user: str = ALICE) -> None:
    import json as _json
    from urllib.parse import urlencode

    from tests.harness import SECRET
    from tests.signing import sign
    option = next(o for o in select["options"] if o["text"]["text"] == label)
    payload = {
        "type": "block_actions", "team": {"id": "T0TEAM"}, "user": {"id": user},
        "api_app_id": "A0IRBOT", "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL},
        "channel": {"id": CHANNEL}, "message": {"ts": message_ts},
        "response_url": driver.slack.response_url("select"),
        "actions": [{"type": "static_select", "action_id": select["action_id"],
                     "block_id": "irbot-choice", "selected_option": option,
                     "action_ts": "1"}],
    }
    body = urlencode({"payload": _json.dumps(payload)})
    assert driver.http.post("/slack/events", content=body,
                            headers=sign(SECRET, body)).status_code == 200


def test_flow_log_window_is_picked_from_a_select(driver: SlackDriver, deps: Deps,
                                                 world: World, clients: dict[str, Any]) -> None:
    clients["ec2"].create_flow_logs(
        ResourceType="VPC", ResourceIds=[world.vpc_id], TrafficType="ALL",
        LogDestinationType="cloud-watch-logs", LogGroupName="/vpc/flow-logs",
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/vpc-flow-logs")
    __import__("boto3").client("logs", region_name="us-east-1").create_log_group(
        logGroupName="/vpc/flow-logs")
    deps.engine.step_config["logs_poll_seconds"] = "0.1"
    ts, _root = open_incident(driver, world)
    driver.click("step:flowlogs", message_ts=ts)
    (first,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "last 24 h"))
    select = next(e for b in first["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if e["type"] == "static_select")
    assert [o["text"]["text"] for o in select["options"]] == [
        "Last 1 h", "Last 6 h", "Last 24 h", "Last 7 days"]
    first_ts = next(k[1] for k, m in driver.slack.messages.items()
                    if m.get("thread_ts") == ts and "last 24 h" in m.get("text", ""))
    _select(driver, first_ts, select, "Last 7 days")
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "last 7 days"))
    runs = [r for r in deps.engine.facts(deps.engine.open_incidents()[0].id).runs.values()]
    assert any(r.step_id == "flowlogs" and r.params == {"hours": "168"} for r in runs)


def test_rebuild_asks_for_the_golden_ami_when_none_is_set(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    import json as _json
    from urllib.parse import urlencode

    from tests.harness import SECRET
    from tests.signing import sign

    golden = clients["ec2"].register_image(Name="golden", RootDeviceName="/dev/sda1")["ImageId"]
    ts, _root = open_incident(driver, world)
    driver.click("step:rebuild", message_ts=ts, user=ALICE)
    (opened,) = driver.slack.wait_for(lambda: [
        c for c in driver.slack.calls_to("views.open")
        if c.args["view"]["callback_id"] == "step-question"])
    meta = opened.args["view"]["private_metadata"]

    def submit(value: str) -> Any:
        payload = {"type": "view_submission", "team": {"id": "T0TEAM"}, "user": {"id": ALICE},
                   "api_app_id": "A0IRBOT", "view": {
                       "id": "V2", "type": "modal", "callback_id": "step-question",
                       "private_metadata": meta,
                       "state": {"values": {"answer": {"answer": {"value": value}}}}}}
        body = urlencode({"payload": _json.dumps(payload)})
        return driver.http.post("/slack/events", content=body, headers=sign(SECRET, body))

    refused = submit("my-favourite-ami")
    assert refused.json()["response_action"] == "errors"
    assert submit(golden).status_code == 200
    _approve(driver, ts, "Rebuild", BOB)
    (result,) = driver.slack.wait_for(lambda: _thread_has(driver, ts, "Replacement i-"))
    assert f"launched from {golden}" in result["text"]


def test_gated_steps_are_refused_when_nobody_may_approve(driver: SlackDriver, deps: Deps,
                                                         world: World,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(deps.access, "approvers", ())
    ts, _root = open_incident(driver, world)
    _resp, name = driver.click("step:revoke-credentials", message_ts=ts)
    assert "no approvers are configured" in driver.wait_reply(name, "IRBOT_APPROVERS")
    driver.click("step:isolate", message_ts=ts)  # containment is not gated: it runs
    driver.slack.wait_for(lambda: _thread_has(driver, ts, "is isolated"))
