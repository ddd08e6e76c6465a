"""Snapshot, evidence, revoke and terminate against moto (and botocore's Stubber where
moto lacks the call)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from aws.credentials import POLICY_NAME, revoke_sessions
from aws.errors import AwsError
from aws.evidence import collect_evidence, console_screenshot
from aws.session import AwsFactory, CallLog
from aws.snapshots import snapshot_states, snapshot_volumes
from playbooks.model import Facts, StepContext
from playbooks.terminate import missing_evidence
from storage.models import Incident, StepRun
from tests.aws_world import AMI, World

NOW = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def _aws() -> Any:
    return AwsFactory(default_region="us-east-1").for_region()


def test_snapshots_every_attached_volume_with_tags(clients: dict[str, Any],
                                                   world: World) -> None:
    taken = snapshot_volumes(_aws(), CallLog(), instance_id=world.instance_id,
                             incident_id="IR-2026-0001", now=NOW)
    assert sorted(s.volume_id for s in taken) == sorted(world.volume_ids)
    assert all(s.snapshot_id and not s.error for s in taken)
    snaps = clients["ec2"].describe_snapshots(
        SnapshotIds=[s.snapshot_id for s in taken])["Snapshots"]
    for snap in snaps:
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert snap["Description"] == "IR-forensic-snapshot-20261203"
        assert tags["IncidentResponse"] == "true" and tags["IncidentId"] == "IR-2026-0001"
        assert tags["SourceInstance"] == world.instance_id
        assert tags["SourceVolume"] in world.volume_ids and tags["SourceDevice"]
    states = snapshot_states(_aws(), CallLog(), [s.snapshot_id for s in taken])
    assert {v["state"] for v in states.values()} == {"completed"}  # moto completes at once


def _incident(world: World) -> Incident:
    return Incident(id="IR-2026-0001", instance_id=world.instance_id,
                    account_id="123456789012", region="us-east-1", vpc_id=world.vpc_id,
                    status="open", opened_by="U0ALICE", reason="", instance={})


def test_evidence_gate_names_what_is_missing(world: World) -> None:
    ctx = StepContext(incident=_incident(world), aws=_aws(), log=CallLog(), actor="U0ALICE")
    missing = missing_evidence(ctx, Facts(runs={}, evidence_kinds=frozenset()))
    assert any("Snapshot volumes" in m for m in missing)
    assert any("metadata" in m for m in missing) and any("console" in m for m in missing)

    taken = snapshot_volumes(_aws(), CallLog(), instance_id=world.instance_id,
                             incident_id="IR-2026-0001", now=NOW)
    run = StepRun(step_id="snapshot", state="succeeded",
                  result={"snapshots": [t.to_dict() for t in taken[:1]]})
    missing = missing_evidence(ctx, Facts(runs={"snapshot": run},
                                          evidence_kinds=frozenset({"metadata"})))
    assert any(taken[1].volume_id in m for m in missing)  # one volume not snapshotted
    assert any("console output" in m for m in missing)

    run.result = {"snapshots": [t.to_dict() for t in taken]}
    assert missing_evidence(ctx, Facts(runs={"snapshot": run}, evidence_kinds=frozenset(
        {"metadata", "console-output"}))) == []


def test_evidence_collects_record_and_console_and_reports_no_screenshot(world: World) -> None:
    got = collect_evidence(_aws(), CallLog(), instance_id=world.instance_id, collected_at=NOW)
    record = json.loads(got.metadata)
    assert record["instance"]["InstanceId"] == world.instance_id
    assert "disableApiTermination" in record["attributes"]
    assert "userData" in record["attributes"]
    assert {g["GroupId"] for g in record["security_groups"]} == {world.web_sg, world.admin_sg}
    assert got.console_output  # moto gives a canned console log
    assert got.screenshot is None
    assert "not available" in got.unavailable["console screenshot"]


def _stubbed_ec2(aws: Any) -> tuple[Any, Stubber]:
    client = boto3.client("ec2", region_name="us-east-1")
    stubber = Stubber(client)
    aws.set_client("ec2", client)
    return client, stubber


def test_console_screenshot_is_decoded_when_aws_has_one() -> None:
    aws = _aws()
    _client, stub = _stubbed_ec2(aws)
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg"
    stub.add_response("get_console_screenshot",
                      {"ImageData": base64.b64encode(jpeg).decode(), "InstanceId": "i-12345678"},
                      {"InstanceId": "i-12345678", "WakeUp": True})
    stub.add_client_error("get_console_screenshot", service_error_code="UnsupportedOperation",
                          service_message="This instance type does not support screenshots")
    with stub:
        assert console_screenshot(aws, CallLog(), "i-12345678") == jpeg
        try:
            console_screenshot(aws, CallLog(), "i-12345678")
            raise AssertionError("expected an error")
        except AwsError as exc:
            assert exc.code == "UnsupportedOperation"


def _profile(iam: Any, name: str) -> str:
    iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    arn = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=f"{name}-role")
    return str(arn)


def test_revoke_detaches_profile_and_denies_older_sessions(clients: dict[str, Any],
                                                           world: World) -> None:
    ec2, iam = clients["ec2"], clients["iam"]
    _profile(iam, "web")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "web"},
                                       InstanceId=world.instance_id)
    other = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=world.subnet_id,
                              IamInstanceProfile={"Name": "web"})["Instances"][0]["InstanceId"]
    done = revoke_sessions(_aws(), CallLog(), instance_id=world.instance_id, now=NOW)
    assert done.profile_action == "detached" and done.roles == ["web-role"]
    assert [o["instance_id"] for o in done.other_instances] == [other]
    associations = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [world.instance_id]}])["IamInstanceProfileAssociations"]
    assert all(a["State"] != "associated" for a in associations)
    policy = iam.get_role_policy(RoleName="web-role", PolicyName=POLICY_NAME)["PolicyDocument"]
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    assert statement["Condition"] == {"DateLessThan": {"aws:TokenIssueTime":
                                                       "2026-12-03T17:00:00Z"}}


def test_revoke_can_swap_in_a_quarantine_profile(clients: dict[str, Any],
                                                 world: World) -> None:
    ec2, iam = clients["ec2"], clients["iam"]
    _profile(iam, "web")
    quarantine_arn = _profile(iam, "irbot-deny-all")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "web"},
                                       InstanceId=world.instance_id)
    done = revoke_sessions(_aws(), CallLog(), instance_id=world.instance_id, now=NOW,
                           quarantine_profile="irbot-deny-all")
    assert done.profile_action == "replaced with irbot-deny-all"
    associations = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [world.instance_id]}])["IamInstanceProfileAssociations"]
    live = [a for a in associations if a["State"] == "associated"]
    assert [a["IamInstanceProfile"]["Arn"] for a in live] == [quarantine_arn]


def test_revoke_without_a_profile_does_nothing(world: World) -> None:
    done = revoke_sessions(_aws(), CallLog(), instance_id=world.instance_id, now=NOW)
    assert done.profile_arn == "" and done.policies_put == []


def test_release_restores_what_isolation_changed(clients: dict[str, Any],
                                                 world: World) -> None:
    from aws.isolation import isolate
    from aws.release import release

    ec2, asg, elbv2 = clients["ec2"], clients["autoscaling"], clients["elbv2"]
    report = isolate(_aws(), CallLog(), instance_id=world.instance_id,
                     incident_id="IR-2026-0001", vpc_id=world.vpc_id)
    done = release(_aws(), CallLog(), instance_id=world.instance_id,
                   isolation=report.to_dict())
    assert done.ok, done.to_dict()
    from tests.aws_world import interface_groups
    assert interface_groups(ec2, world.eni_ids[0]) == [world.web_sg]
    assert interface_groups(ec2, world.eni_ids[1]) == sorted([world.admin_sg, world.web_sg])
    assert not ec2.describe_instance_attribute(
        InstanceId=world.instance_id, Attribute="disableApiTermination"
    )["DisableApiTermination"]["Value"]
    members = asg.describe_auto_scaling_instances(InstanceIds=[world.instance_id])
    assert [m["AutoScalingGroupName"] for m in members["AutoScalingInstances"]] == [
        world.asg_name]
    health = elbv2.describe_target_health(TargetGroupArn=world.target_group_arn)
    assert world.instance_id in [d["Target"]["Id"] for d in health["TargetHealthDescriptions"]]


def test_release_refuses_what_it_cannot_restore(world: World) -> None:
    from aws.release import release

    done = release(_aws(), CallLog(), instance_id=world.instance_id, isolation={
        "quarantine_group_id": "sg-q",
        "interfaces": [{"interface_id": world.eni_ids[0], "groups_before": ["sg-q"]}],
    })
    assert not done.ok and "restore them by hand" in done.errors[0]


def test_lateral_marks_the_peers_flow_logs_saw(clients: dict[str, Any], world: World) -> None:
    from playbooks.lateral import run_lateral

    peer = clients["ec2"].run_instances(ImageId=AMI, MinCount=1, MaxCount=1,
                                        SubnetId=world.subnet_id)["Instances"][0]
    flows = StepRun(step_id="flowlogs", state="succeeded", result={"rows": [
        {"dstAddr": peer["PrivateIpAddress"], "dstPort": "445", "flows": "9"}]})
    ctx = StepContext(incident=_incident(world), aws=_aws(), log=CallLog(), actor="U0ALICE",
                      facts=Facts(runs={"flowlogs": flows}, evidence_kinds=frozenset()))
    outcome = run_lateral(ctx)
    (row,) = [r for r in outcome.table if r[0] == peer["InstanceId"]]
    assert "traffic from it (port 445, 9 flows)" in row[4]
    assert outcome.buttons and peer["InstanceId"] in outcome.buttons[0].value
    assert outcome.artifacts[0].kind == "lateral-movement"


def test_aws_backup_recovery_points_are_listed_and_restorable(clients: dict[str, Any],
                                                              world: World) -> None:
    from aws.rebuild import data_backups

    ec2 = clients["ec2"]
    volume = world.volume_ids[1]
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    aws = _aws()
    backup = boto3.client("backup", region_name="us-east-1")
    stub = Stubber(backup)
    aws.set_client("backup", backup)
    arn = f"arn:aws:ec2:us-east-1::snapshot/{snap}"
    stub.add_response("list_recovery_points_by_resource", {"RecoveryPoints": [
        {"RecoveryPointArn": arn, "CreationDate": datetime(2026, 12, 1, tzinfo=UTC),
         "Status": "COMPLETED"}]},
        {"ResourceArn": f"arn:aws:ec2:us-east-1:123456789012:volume/{volume}"})
    with stub:
        found, problems = data_backups(aws, CallLog(), volumes=[
            {"volume_id": volume, "device": "/dev/sdf"}],
            compromised_at=datetime(2026, 12, 2, tzinfo=UTC), account_id="123456789012")
    assert problems == []
    (point,) = [b for b in found if b.source == "aws-backup"]
    assert point.snapshot_id == snap and point.before_compromise
    (plain_snap,) = [b for b in found if b.source == "ebs"]
    assert not plain_snap.before_compromise  # taken now, after the given compromise time


def test_compromise_time_is_the_first_finding_when_earlier() -> None:
    from datetime import timedelta

    from playbooks.rebuild import compromise_time

    opened = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    incident = Incident(id="IR-2026-0001", instance_id="i-12345678", account_id="1" * 12,
                        region="us-east-1", vpc_id="vpc-1", status="open", opened_by="U1",
                        reason="", instance={}, opened_at=opened)
    seen = opened - timedelta(hours=5)
    with_finding = StepContext(incident=incident, aws=None, log=CallLog(), actor="U1",
                               facts=Facts(runs={}, evidence_kinds=frozenset(),
                                           first_finding_at=seen))
    assert compromise_time(with_finding) == (seen, "when GuardDuty first saw the activity")
    without = StepContext(incident=incident, aws=None, log=CallLog(), actor="U1")
    assert compromise_time(without) == (opened, "when the incident opened")
