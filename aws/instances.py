"""Looking an instance up: the summary a responder sees when an incident opens."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from aws.errors import AwsError, Malformed, NotFound
from aws.session import Aws, CallLog, run_all

INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def is_instance_id(value: str) -> bool:
    """Return True when `value` has the shape of an EC2 instance id."""
    return bool(INSTANCE_ID.match(value))


@dataclass(frozen=True)
class InterfaceInfo:
    interface_id: str
    device_index: int
    private_ip: str
    public_ip: str
    subnet_id: str
    group_ids: list[str]


@dataclass(frozen=True)
class InstanceSummary:
    instance_id: str
    name: str
    instance_type: str
    state: str
    account_id: str
    region: str
    vpc_id: str
    subnet_id: str
    private_ips: list[str]
    public_ips: list[str]
    security_groups: list[dict[str, str]]
    instance_profile_arn: str
    role_names: list[str]
    launch_time: str
    image_id: str
    key_name: str
    interfaces: list[InterfaceInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready data."""
        return asdict(self)


def describe_instance_raw(aws: Aws, log: CallLog, instance_id: str) -> tuple[dict[str, Any], str]:
    """Return the instance's describe_instances record and its owner account id."""
    if not is_instance_id(instance_id):
        raise Malformed(f"{instance_id!r} is not an EC2 instance id (i-0123456789abcdef0)")
    try:
        response = aws.call(log, "ec2", "describe_instances", InstanceIds=[instance_id])
    except NotFound:
        raise NotFound(
            f"instance {instance_id} was not found in {aws.region}",
            code="InvalidInstanceID.NotFound", operation="DescribeInstances",
        ) from None
    for reservation in response.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                return instance, str(reservation.get("OwnerId", ""))
    raise NotFound(f"instance {instance_id} was not found in {aws.region}",
                   code="InvalidInstanceID.NotFound", operation="DescribeInstances")


def interfaces_of(instance: dict[str, Any]) -> list[InterfaceInfo]:
    """Return the instance's network interfaces, primary first."""
    found = []
    for eni in instance.get("NetworkInterfaces", []):
        found.append(
            InterfaceInfo(
                interface_id=eni["NetworkInterfaceId"],
                device_index=int(eni.get("Attachment", {}).get("DeviceIndex", 0)),
                private_ip=str(eni.get("PrivateIpAddress", "")),
                public_ip=str(eni.get("Association", {}).get("PublicIp", "")),
                subnet_id=str(eni.get("SubnetId", "")),
                group_ids=[g["GroupId"] for g in eni.get("Groups", [])],
            )
        )
    return sorted(found, key=lambda i: i.device_index)


def summarize(aws: Aws, log: CallLog, instance_id: str) -> InstanceSummary:
    """Describe the instance and resolve its role names; raise NotFound or Malformed."""
    instance, owner = describe_instance_raw(aws, log, instance_id)
    profile_arn = str(instance.get("IamInstanceProfile", {}).get("Arn", ""))
    role_names: list[str] = []
    if profile_arn:
        profile_name = profile_arn.rsplit("/", 1)[-1]
        (profile,) = run_all(
            [lambda: aws.call(log, "iam", "get_instance_profile", InstanceProfileName=profile_name)]
        )
        # The role is a nicety for the summary: a missing iam:GetInstanceProfile must not
        # stop an incident from opening.
        if not isinstance(profile, AwsError):
            role_names = [r["RoleName"] for r in profile["InstanceProfile"].get("Roles", [])]
    interfaces = interfaces_of(instance)
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    private_ips = [i.private_ip for i in interfaces if i.private_ip] or [
        str(instance.get("PrivateIpAddress", ""))
    ]
    public_ips = [i.public_ip for i in interfaces if i.public_ip]
    if not public_ips and instance.get("PublicIpAddress"):
        public_ips = [str(instance["PublicIpAddress"])]
    # An instance's groups are those of its interfaces (each may differ).
    groups: dict[str, str] = {}
    for eni in instance.get("NetworkInterfaces", []):
        for g in eni.get("Groups", []):
            groups[g["GroupId"]] = g.get("GroupName", "")
    for g in instance.get("SecurityGroups", []):
        groups.setdefault(g["GroupId"], g.get("GroupName", ""))
    launch: Any = instance.get("LaunchTime")
    return InstanceSummary(
        instance_id=instance_id,
        name=tags.get("Name", ""),
        instance_type=str(instance.get("InstanceType", "")),
        state=str(instance.get("State", {}).get("Name", "")),
        account_id=owner,
        region=aws.region,
        vpc_id=str(instance.get("VpcId", "")),
        subnet_id=str(instance.get("SubnetId", "")),
        private_ips=[ip for ip in private_ips if ip],
        public_ips=public_ips,
        security_groups=[{"id": gid, "name": name} for gid, name in groups.items()],
        instance_profile_arn=profile_arn,
        role_names=role_names,
        launch_time=launch.isoformat() if hasattr(launch, "isoformat") else str(launch or ""),
        image_id=str(instance.get("ImageId", "")),
        key_name=str(instance.get("KeyName", "")),
        interfaces=interfaces,
    )
