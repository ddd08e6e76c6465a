"""Lateral movement: the running instances in the compromised instance's VPC, and what
each shares with it (role, security groups, subnet, key pair)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aws.instances import describe_instance_raw
from aws.session import Aws, CallLog


@dataclass
class Neighbour:
    instance_id: str
    name: str
    private_ip: str
    role: str
    shares: list[str] = field(default_factory=list)

    @property
    def suspicious(self) -> bool:
        """Sharing a role, key pair or security group, or talking to it, is a path."""
        return any(not s.startswith("subnet") for s in self.shares)

    def to_dict(self) -> dict[str, Any]:
        """Return the neighbour as JSON-ready data."""
        return {**asdict(self), "suspicious": self.suspicious}


def _groups(instance: dict[str, Any]) -> set[str]:
    found = {g["GroupId"] for g in instance.get("SecurityGroups", [])}
    for eni in instance.get("NetworkInterfaces", []):
        found |= {g["GroupId"] for g in eni.get("Groups", [])}
    return found


def neighbours(aws: Aws, log: CallLog, *, instance_id: str,
               original_groups: set[str] | None = None) -> tuple[str, list[Neighbour]]:
    """Return the VPC id and its other running instances, the ones sharing most first.

    `original_groups` are the instance's groups before isolation (its current ones are
    the quarantine group after Isolate).
    """
    me, _ = describe_instance_raw(aws, log, instance_id)
    vpc = str(me.get("VpcId", ""))
    if not vpc:
        return "", []
    my_role = str(me.get("IamInstanceProfile", {}).get("Arn", ""))
    my_groups = original_groups or _groups(me)
    my_subnets = {str(me.get("SubnetId", ""))} | {
        str(e.get("SubnetId", "")) for e in me.get("NetworkInterfaces", [])}
    my_key = str(me.get("KeyName", ""))
    reservations = aws.paginate(log, "ec2", "describe_instances", "Reservations", Filters=[
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])
    found: list[Neighbour] = []
    for reservation in reservations:
        for other in reservation.get("Instances", []):
            if other["InstanceId"] == instance_id:
                continue
            role = str(other.get("IamInstanceProfile", {}).get("Arn", ""))
            shares = []
            if my_role and role == my_role:
                shares.append(f"role {role.rsplit('/', 1)[-1]}")
            shares += [f"security group {g}" for g in sorted(_groups(other) & my_groups)]
            if my_key and other.get("KeyName") == my_key:
                shares.append(f"key pair {my_key}")
            shares += [f"subnet {s}" for s in sorted(my_subnets & (
                {str(other.get("SubnetId", ""))}
                | {str(e.get("SubnetId", "")) for e in other.get("NetworkInterfaces", [])}))
                if s]
            tags = {t["Key"]: t["Value"] for t in other.get("Tags", [])}
            found.append(Neighbour(instance_id=other["InstanceId"], name=tags.get("Name", ""),
                                   private_ip=str(other.get("PrivateIpAddress", "")),
                                   role=role.rsplit("/", 1)[-1], shares=shares))
    found.sort(key=lambda n: (-len(n.shares), n.instance_id))
    return vpc, found
