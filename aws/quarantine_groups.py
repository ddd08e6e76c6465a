"""The per-VPC security groups isolation uses: an empty quarantine group and an allow-all
"untrack" group (moving an interface through it first makes its tracked flows untracked,
so the quarantine group then cuts them; AWS's own containment technique)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws.errors import AwsError
from aws.session import Aws, CallLog

QUARANTINE_NAME = "irbot-quarantine"
UNTRACK_NAME = "irbot-untrack"
PURPOSE_TAG = "irbot:purpose"

_ALL_V4 = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
_ALL_V6 = {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}


@dataclass(frozen=True)
class VpcGroups:
    quarantine_id: str
    untrack_id: str
    created: list[str]
    repaired: list[str]


def find_groups(aws: Aws, log: CallLog, vpc_id: str) -> dict[str, dict[str, Any]]:
    """Return irbot's groups in the VPC by name (quarantine, untrack), as described."""
    groups = aws.paginate(
        log, "ec2", "describe_security_groups", "SecurityGroups",
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [QUARANTINE_NAME, UNTRACK_NAME]},
        ],
    )
    return {g["GroupName"]: g for g in groups}


def ensure_groups(
    aws: Aws, log: CallLog, vpc_id: str, found: dict[str, dict[str, Any]]
) -> VpcGroups:
    """Create or repair the VPC's quarantine and untrack groups; return their ids."""
    created: list[str] = []
    repaired: list[str] = []
    quarantine = found.get(QUARANTINE_NAME)
    if quarantine is None:
        quarantine = _create(aws, log, vpc_id, QUARANTINE_NAME, "quarantine",
                             "irbot quarantine: no inbound, no outbound")
        created.append(quarantine["GroupId"])
    if _strip_rules(aws, log, quarantine) and quarantine["GroupId"] not in created:
        repaired.append(quarantine["GroupId"])
    untrack = found.get(UNTRACK_NAME)
    if untrack is None:
        untrack = _create(aws, log, vpc_id, UNTRACK_NAME, "untrack",
                          "irbot untrack: allow-all both ways, transit only during isolation")
        created.append(untrack["GroupId"])
    if _open_all(aws, log, untrack) and untrack["GroupId"] not in created:
        repaired.append(untrack["GroupId"])
    return VpcGroups(quarantine["GroupId"], untrack["GroupId"], created, repaired)


def _create(
    aws: Aws, log: CallLog, vpc_id: str, name: str, purpose: str, description: str
) -> dict[str, Any]:
    try:
        aws.call(
            log, "ec2", "create_security_group",
            GroupName=name, Description=description, VpcId=vpc_id,
            TagSpecifications=[{
                "ResourceType": "security-group",
                "Tags": [{"Key": PURPOSE_TAG, "Value": purpose}, {"Key": "Name", "Value": name}],
            }],
        )
    except AwsError as exc:
        # Another isolation in the same VPC created it first: use theirs.
        if exc.code != "InvalidGroup.Duplicate":
            raise
    described = find_groups(aws, log, vpc_id).get(name)
    if described is None:
        raise AwsError(f"security group {name} was created but cannot be found in {vpc_id}")
    return described


def _strip_rules(aws: Aws, log: CallLog, group: dict[str, Any]) -> bool:
    """Revoke every rule of the quarantine group (a new group allows all egress)."""
    changed = False
    if group.get("IpPermissionsEgress"):
        aws.call(log, "ec2", "revoke_security_group_egress",
                 GroupId=group["GroupId"], IpPermissions=_clean(group["IpPermissionsEgress"]))
        changed = True
    if group.get("IpPermissions"):
        aws.call(log, "ec2", "revoke_security_group_ingress",
                 GroupId=group["GroupId"], IpPermissions=_clean(group["IpPermissions"]))
        changed = True
    return changed


def _open_all(aws: Aws, log: CallLog, group: dict[str, Any]) -> bool:
    """Make the untrack group allow all traffic, IPv4 and IPv6, in and out."""
    changed = False
    for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
        missing = [rule for rule in (_ALL_V4, _ALL_V6) if not _has_rule(group.get(key, []), rule)]
        if missing:
            aws.call(log, "ec2", f"authorize_security_group_{direction}",
                     GroupId=group["GroupId"], IpPermissions=missing)
            changed = True
    return changed


def _has_rule(permissions: list[dict[str, Any]], wanted: dict[str, Any]) -> bool:
    for perm in permissions:
        if perm.get("IpProtocol") != "-1":
            continue
        if "IpRanges" in wanted and any(
            r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])
        ):
            return True
        if "Ipv6Ranges" in wanted and any(
            r.get("CidrIpv6") == "::/0" for r in perm.get("Ipv6Ranges", [])
        ):
            return True
    return False


def _clean(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only the fields revoke_* accepts, dropping empty lists."""
    keep = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "PrefixListIds",
            "UserIdGroupPairs")
    return [{k: v for k, v in p.items() if k in keep and v not in ([], None)} for p in permissions]


def rule_count(group: dict[str, Any]) -> int:
    """Return how many ingress and egress permissions the described group holds."""
    return len(group.get("IpPermissions", [])) + len(group.get("IpPermissionsEgress", []))
