"""Looking an instance up: the summary a responder sees when an incident opens."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def summary_from_finding(details: Any, *, account_id: str, region: str) -> InstanceSummary:
    """Build the summary from a GuardDuty finding's `resource.instanceDetails`, for an
    account irbot cannot look into. Anything missing or odd in the finding is left empty."""
    details = details if isinstance(details, dict) else {}
    enis = [e for e in details.get("networkInterfaces") or [] if isinstance(e, dict)]
    interfaces = []
    groups: dict[str, str] = {}
    for index, eni in enumerate(enis):
        eni_groups = [g for g in eni.get("securityGroups") or [] if isinstance(g, dict)]
        for g in eni_groups:
            groups[_text(g.get("groupId"))] = _text(g.get("groupName"))
        interfaces.append(InterfaceInfo(
            interface_id=_text(eni.get("networkInterfaceId")), device_index=index,
            private_ip=_text(eni.get("privateIpAddress")), public_ip=_text(eni.get("publicIp")),
            subnet_id=_text(eni.get("subnetId")),
            group_ids=[_text(g.get("groupId")) for g in eni_groups]))
    tags = {_text(t.get("key")): _text(t.get("value"))
            for t in details.get("tags") or [] if isinstance(t, dict)}
    profile = details.get("iamInstanceProfile")
    launch = details.get("launchTime")
    if isinstance(launch, int | float) and not isinstance(launch, bool):
        launch = datetime.fromtimestamp(launch / 1000, tz=UTC).isoformat()
    return InstanceSummary(
        instance_id=_text(details.get("instanceId")), name=tags.get("Name", ""),
        instance_type=_text(details.get("instanceType")),
        state=_text(details.get("instanceState")), account_id=account_id, region=region,
        vpc_id=_text(enis[0].get("vpcId")) if enis else "",
        subnet_id=interfaces[0].subnet_id if interfaces else "",
        private_ips=[i.private_ip for i in interfaces if i.private_ip],
        public_ips=[i.public_ip for i in interfaces if i.public_ip],
        security_groups=[{"id": k, "name": v} for k, v in groups.items() if k],
        instance_profile_arn=_text(profile.get("arn")) if isinstance(profile, dict) else "",
        role_names=[], launch_time=_text(launch), image_id=_text(details.get("imageId")),
        key_name="", interfaces=interfaces,
    )
