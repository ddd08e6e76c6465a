"""Hardening after an incident: IMDSv2 with hop limit 1, no SSH open to the world, and
Amazon Inspector scanning EC2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws.errors import AwsError
from aws.quarantine_groups import QUARANTINE_NAME, UNTRACK_NAME
from aws.session import Aws, CallLog, run_all

_WORLD_V4 = "0.0.0.0/0"
_WORLD_V6 = "::/0"


def require_imdsv2(aws: Aws, log: CallLog, instance_id: str) -> dict[str, Any]:
    """Require IMDSv2 tokens with a hop limit of 1; return the options AWS reports."""
    response = aws.call(log, "ec2", "modify_instance_metadata_options", InstanceId=instance_id,
                        HttpTokens="required", HttpPutResponseHopLimit=1,
                        HttpEndpoint="enabled")
    return dict(response.get("InstanceMetadataOptions", {}))


def instances_without_imdsv2(aws: Aws, log: CallLog, vpc_id: str) -> list[dict[str, str]]:
    """Return the VPC's running instances that still accept IMDSv1 (or a hop limit > 1)."""
    reservations = aws.paginate(log, "ec2", "describe_instances", "Reservations", Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "instance-state-name", "Values": ["running", "stopped"]},
    ])
    lacking = []
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            options = instance.get("MetadataOptions", {})
            if (options.get("HttpTokens") != "required"
                    or int(options.get("HttpPutResponseHopLimit", 1)) > 1):
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                lacking.append({"instance_id": instance["InstanceId"],
                                "name": tags.get("Name", ""),
                                "tokens": str(options.get("HttpTokens", "optional")),
                                "hop_limit": str(options.get("HttpPutResponseHopLimit", ""))})
    return lacking


def opens_ssh(permission: dict[str, Any]) -> bool:
    """True when the rule admits TCP port 22 (or all traffic)."""
    protocol = str(permission.get("IpProtocol"))
    if protocol == "-1":
        return True
    if protocol not in ("tcp", "6"):
        return False
    return int(permission.get("FromPort", 0)) <= 22 <= int(permission.get("ToPort", 65535))


@dataclass(frozen=True)
class SshRule:
    group_id: str
    group_name: str
    permission: dict[str, Any]  # exactly the world-open part of the rule, for revoking

    def describe(self) -> str:
        """Return the rule as a responder reads it."""
        p = self.permission
        ports = ("all traffic" if p.get("IpProtocol") == "-1"
                 else f"tcp {p.get('FromPort')}-{p.get('ToPort')}")
        cidrs = [r["CidrIp"] for r in p.get("IpRanges", [])] + [
            r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
        return f"{self.group_id} ({self.group_name}): {ports} from {', '.join(cidrs)}"


def ssh_open_to_world(aws: Aws, log: CallLog, vpc_id: str) -> list[SshRule]:
    """Return the ingress rules in the VPC that open port 22 to 0.0.0.0/0 or ::/0."""
    groups = aws.paginate(log, "ec2", "describe_security_groups", "SecurityGroups",
                          Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    found = []
    for group in groups:
        if group.get("GroupName") in (QUARANTINE_NAME, UNTRACK_NAME):
            continue  # irbot's own: the untrack group is allow-all on purpose, in transit
        for permission in group.get("IpPermissions", []):
            if not opens_ssh(permission):
                continue
            v4 = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") == _WORLD_V4]
            v6 = [r for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") == _WORLD_V6]
            if v4 or v6:
                world = {k: v for k, v in permission.items()
                         if k in ("IpProtocol", "FromPort", "ToPort")}
                if v4:
                    world["IpRanges"] = [{"CidrIp": _WORLD_V4}]
                if v6:
                    world["Ipv6Ranges"] = [{"CidrIpv6": _WORLD_V6}]
                found.append(SshRule(group["GroupId"], str(group.get("GroupName", "")), world))
    return found


def revoke_rules(aws: Aws, log: CallLog, rules: list[SshRule]) -> list[tuple[SshRule, str]]:
    """Revoke each rule at once; return (rule, "" or the error)."""
    tasks: list[Callable[[], dict[str, Any]]] = [
        functools.partial(aws.call, log, "ec2", "revoke_security_group_ingress",
                          GroupId=r.group_id, IpPermissions=[r.permission]) for r in rules]
    return [(rule, str(result) if isinstance(result, AwsError) else "")
            for rule, result in zip(rules, run_all(tasks), strict=True)]


def enable_inspector(aws: Aws, log: CallLog, account_id: str) -> str:
    """Enable Amazon Inspector for EC2 in the account; return its EC2 scanning status."""
    aws.call(log, "inspector2", "enable", resourceTypes=["EC2"], accountIds=[account_id])
    status = aws.call(log, "inspector2", "batch_get_account_status", accountIds=[account_id])
    for account in status.get("accounts", []):
        if account.get("accountId") == account_id:
            return str(account.get("resourceState", {}).get("ec2", {}).get("status", "UNKNOWN"))
    return "UNKNOWN"
