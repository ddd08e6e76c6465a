"""The per-VPC security groups isolation uses: an empty quarantine group and an allow-all
"untrack" group (moving an interface through it first makes its tracked flows untracked,
so the quarantine group then cuts them; AWS's own containment technique)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws.errors import AwsError
from aws.session import Aws, CallLog, run_all

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
    """Create or repair the VPC's quarantine and untrack groups (both at once)."""
    results = run_all([
        lambda: _ensure_one(aws, log, vpc_id, QUARANTINE_NAME, found.get(QUARANTINE_NAME)),
        lambda: _ensure_one(aws, log, vpc_id, UNTRACK_NAME, found.get(UNTRACK_NAME)),
    ])
    ensured: list[tuple[str, str]] = []
    for result in results:
        if isinstance(result, AwsError):
            raise result
        ensured.append(result)
    (quarantine_id, q_state), (untrack_id, u_state) = ensured
    states = [(quarantine_id, q_state), (untrack_id, u_state)]
    return VpcGroups(
        quarantine_id=quarantine_id,
        untrack_id=untrack_id,
        created=[gid for gid, state in states if state == "created"],
        repaired=[gid for gid, state in states if state == "repaired"],
    )


def _ensure_one(
    aws: Aws, log: CallLog, vpc_id: str, name: str, group: dict[str, Any] | None
) -> tuple[str, str]:
    """Return the group's id and "created", "repaired" or "" for one that was right."""
    purpose, description, fix = _SPECS[name]
    state = ""
    if group is None:
        group = _create(aws, log, vpc_id, name, purpose, description)
        state = "created"
    if fix(aws, log, group) and not state:
        state = "repaired"
    return str(group["GroupId"]), state


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


def clean_permission(permission: dict[str, Any]) -> dict[str, Any]:
    """Keep only the fields authorize_* and revoke_* accept, dropping empty lists."""
    keep = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "PrefixListIds",
            "UserIdGroupPairs")
    return {k: v for k, v in permission.items() if k in keep and v not in ([], None)}


def _clean(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [clean_permission(p) for p in permissions]


_SPECS: dict[str, tuple[str, str, Callable[[Aws, CallLog, dict[str, Any]], bool]]] = {
    QUARANTINE_NAME: ("quarantine", "irbot quarantine: no inbound, no outbound", _strip_rules),
    UNTRACK_NAME: ("untrack", "irbot untrack: allow-all both ways, transit only during "
                   "isolation", _open_all),
}


def rule_count(group: dict[str, Any]) -> int:
    """Return how many ingress and egress permissions the described group holds."""
    return len(group.get("IpPermissions", [])) + len(group.get("IpPermissionsEgress", []))
