"""Rebuild: a replacement from a golden AMI, hardened, with the original network placement
and profile; the backups taken before the compromise; restoring one onto the replacement."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from aws.errors import AwsError
from aws.hardening import opens_ssh
from aws.quarantine_groups import clean_permission
from aws.session import Aws, CallLog, run_all


@dataclass
class Replacement:
    instance_id: str = ""
    image_id: str = ""
    subnet_id: str = ""
    groups: list[str] = field(default_factory=list)
    sanitized: dict[str, str] = field(default_factory=dict)  # original group -> copy
    profile_arn: str = ""
    availability_zone: str = ""
    state: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the replacement as JSON-ready data."""
        return asdict(self)


def _world_ssh(permission: dict[str, Any]) -> dict[str, Any] | None:
    """Return the permission without its SSH-to-world ranges (None if nothing is left)."""
    if not opens_ssh(permission):
        return permission
    kept = dict(permission)
    kept["IpRanges"] = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") != "0.0.0.0/0"]
    kept["Ipv6Ranges"] = [r for r in permission.get("Ipv6Ranges", [])
                          if r.get("CidrIpv6") != "::/0"]
    if not (kept["IpRanges"] or kept["Ipv6Ranges"] or kept.get("UserIdGroupPairs")
            or kept.get("PrefixListIds")):
        return None
    return kept


def safe_groups(aws: Aws, log: CallLog, *, group_ids: list[str], vpc_id: str,
                incident_id: str) -> tuple[list[str], dict[str, str]]:
    """Return groups for the replacement: each original group, or a copy of it without the
    rules opening SSH to the world (the original stays as it is for its other members)."""
    described = aws.call(log, "ec2", "describe_security_groups", GroupIds=group_ids)
    use: list[str] = []
    copies: dict[str, str] = {}
    for group in described.get("SecurityGroups", []):
        rules = group.get("IpPermissions", [])
        kept = [k for k in (_world_ssh(p) for p in rules) if k is not None]
        if kept == rules:
            use.append(group["GroupId"])
            continue
        name = f"{group['GroupName']}-no-ssh-{incident_id}"[:255]
        created = aws.call(log, "ec2", "create_security_group", GroupName=name, VpcId=vpc_id,
                           Description=f"{group['GroupName']} without SSH from the world "
                                       f"(irbot {incident_id})",
                           TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                               {"Key": "irbot:incident", "Value": incident_id},
                               {"Key": "irbot:copy-of", "Value": group["GroupId"]}]}])
        copy_id = str(created["GroupId"])
        if kept:
            aws.call(log, "ec2", "authorize_security_group_ingress", GroupId=copy_id,
                     IpPermissions=[clean_permission(k) for k in kept])
        use.append(copy_id)
        copies[group["GroupId"]] = copy_id
    return use, copies


def launch_replacement(aws: Aws, log: CallLog, *, original: dict[str, Any], image_id: str,
                       groups: list[str], profile_arn: str, incident_id: str) -> Replacement:
    """Launch the replacement: IMDSv2 only (hop limit 1), no key pair, tagged."""
    tags = {t["Key"]: t["Value"] for t in original.get("Tags", [])}
    name = tags.get("Name", original["InstanceId"])
    params: dict[str, Any] = {
        "ImageId": image_id, "MinCount": 1, "MaxCount": 1,
        "InstanceType": original.get("InstanceType", "t3.micro"),
        "SubnetId": original["SubnetId"], "SecurityGroupIds": groups,
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                            "HttpEndpoint": "enabled"},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": f"{name}-rebuilt"},
            {"Key": "irbot:replaces", "Value": original["InstanceId"]},
            {"Key": "irbot:incident", "Value": incident_id}]}],
    }
    if profile_arn:
        params["IamInstanceProfile"] = {"Arn": profile_arn}
    launched = aws.call(log, "ec2", "run_instances", **params)["Instances"][0]
    return Replacement(instance_id=launched["InstanceId"], image_id=image_id,
                       subnet_id=original["SubnetId"], groups=groups, profile_arn=profile_arn,
                       availability_zone=str(launched.get("Placement", {}).get(
                           "AvailabilityZone", "")),
                       state=str(launched.get("State", {}).get("Name", "")))


@dataclass(frozen=True)
class Backup:
    source: str  # "ebs" or "aws-backup"
    backup_id: str  # snapshot id, or recovery point ARN
    volume_id: str
    device: str
    created: datetime
    before_compromise: bool

    @property
    def snapshot_id(self) -> str:
        """The EBS snapshot to restore from ("" when it cannot be restored as a volume).

        AWS Backup keeps EBS recovery points as EBS snapshots in the account, so those
        restore the same way as a plain snapshot.
        """
        if self.source == "ebs":
            return self.backup_id
        match = re.search(r":snapshot/(snap-[0-9a-f]+)$", self.backup_id)
        return match.group(1) if match else ""


def data_backups(aws: Aws, log: CallLog, *, volumes: list[dict[str, str]],
                 compromised_at: datetime, account_id: str) -> tuple[list[Backup], list[str]]:
    """Return the EBS snapshots and AWS Backup recovery points of the data volumes, newest
    first, each marked before or after the compromise; and what could not be listed."""
    if not volumes:
        return [], []
    devices = {v["volume_id"]: v["device"] for v in volumes}
    problems: list[str] = []
    found: list[Backup] = []
    snapshots = aws.paginate(log, "ec2", "describe_snapshots", "Snapshots", OwnerIds=["self"],
                             Filters=[{"Name": "volume-id", "Values": list(devices)}])
    for snap in snapshots:
        created = snap["StartTime"]
        found.append(Backup("ebs", snap["SnapshotId"], snap["VolumeId"],
                            devices.get(snap["VolumeId"], ""), created,
                            created < compromised_at))

    def points(volume_id: str) -> list[dict[str, Any]]:
        arn = f"arn:aws:ec2:{aws.region}:{account_id}:volume/{volume_id}"
        return aws.paginate(log, "backup", "list_recovery_points_by_resource",
                            "RecoveryPoints", ResourceArn=arn)

    for volume_id, result in zip(devices, run_all([functools.partial(points, v)
                                                    for v in devices]), strict=True):
        if isinstance(result, AwsError):
            problems.append(f"AWS Backup recovery points of {volume_id}: {result}")
            continue
        for point in result:
            created = point["CreationDate"]
            found.append(Backup("aws-backup", point["RecoveryPointArn"], volume_id,
                                devices[volume_id], created, created < compromised_at))
    found.sort(key=lambda b: b.created, reverse=True)
    return found, problems


def restore_snapshot(aws: Aws, log: CallLog, *, snapshot_id: str, instance_id: str,
                     availability_zone: str, device: str, incident_id: str,
                     wait_seconds: float = 300.0, poll_seconds: float = 5.0) -> str:
    """Create a volume from the snapshot and attach it to the instance; return its id."""
    created = aws.call(log, "ec2", "create_volume", SnapshotId=snapshot_id,
                       AvailabilityZone=availability_zone,
                       TagSpecifications=[{"ResourceType": "volume", "Tags": [
                           {"Key": "irbot:incident", "Value": incident_id},
                           {"Key": "irbot:restored-from", "Value": snapshot_id}]}])
    volume_id = str(created["VolumeId"])
    deadline = time.monotonic() + wait_seconds
    while created.get("State") != "available":
        if time.monotonic() > deadline:
            raise AwsError(f"{volume_id} is still {created.get('State')} after "
                           f"{wait_seconds:.0f} s; attach it by hand")
        time.sleep(poll_seconds)
        created = aws.call(log, "ec2", "describe_volumes", VolumeIds=[volume_id])["Volumes"][0]
    aws.call(log, "ec2", "attach_volume", VolumeId=volume_id, InstanceId=instance_id,
             Device=device)
    return volume_id

