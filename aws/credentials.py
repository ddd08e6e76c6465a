"""Cut off an instance role's credentials: detach (or replace) the instance profile so no
new ones are fetched, then deny every session issued before now."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from aws.errors import AwsError
from aws.session import Aws, CallLog

POLICY_NAME = "irbot-revoke-older-sessions"


def revoke_policy(cutoff: datetime) -> dict[str, Any]:
    """Return the inline policy denying everything to sessions issued before `cutoff`."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "IrbotRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {
                "aws:TokenIssueTime": cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")}},
        }],
    }


@dataclass
class Revocation:
    profile_arn: str = ""
    roles: list[str] = field(default_factory=list)
    profile_action: str = ""
    cutoff: str = ""
    policies_put: list[str] = field(default_factory=list)
    other_instances: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the revocation as JSON-ready data."""
        return asdict(self)


def profile_of(aws: Aws, log: CallLog, instance_id: str) -> tuple[str, str]:
    """Return the instance's (association id, profile ARN), or empty strings."""
    associations = aws.paginate(
        log, "ec2", "describe_iam_instance_profile_associations", "IamInstanceProfileAssociations",
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    for association in associations:
        if association.get("State") in ("associated", "associating"):
            return (str(association["AssociationId"]),
                    str(association.get("IamInstanceProfile", {}).get("Arn", "")))
    return "", ""


def roles_of(aws: Aws, log: CallLog, profile_arn: str) -> list[str]:
    """Return the role names of an instance profile."""
    name = profile_arn.rsplit("/", 1)[-1]
    profile = aws.call(log, "iam", "get_instance_profile", InstanceProfileName=name)
    return [r["RoleName"] for r in profile["InstanceProfile"].get("Roles", [])]


def other_holders(aws: Aws, log: CallLog, *, profile_arn: str,
                  instance_id: str) -> list[dict[str, str]]:
    """Return the other running instances that use the same instance profile."""
    reservations = aws.paginate(
        log, "ec2", "describe_instances", "Reservations",
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    holders = []
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            if (instance.get("IamInstanceProfile", {}).get("Arn") == profile_arn
                    and instance["InstanceId"] != instance_id):
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                holders.append({"instance_id": instance["InstanceId"],
                                "name": tags.get("Name", ""),
                                "private_ip": str(instance.get("PrivateIpAddress", ""))})
    return holders


def revoke_sessions(aws: Aws, log: CallLog, *, instance_id: str, now: datetime,
                    quarantine_profile: str = "") -> Revocation:
    """Detach or replace the profile, then deny sessions issued before `now` on each role."""
    result = Revocation(cutoff=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    association_id, result.profile_arn = profile_of(aws, log, instance_id)
    if not result.profile_arn:
        return result
    result.roles = roles_of(aws, log, result.profile_arn)
    result.other_instances = other_holders(aws, log, profile_arn=result.profile_arn,
                                           instance_id=instance_id)
    try:
        if quarantine_profile:
            aws.call(log, "ec2", "replace_iam_instance_profile_association",
                     AssociationId=association_id,
                     IamInstanceProfile={"Name": quarantine_profile})
            result.profile_action = f"replaced with {quarantine_profile}"
        else:
            aws.call(log, "ec2", "disassociate_iam_instance_profile",
                     AssociationId=association_id)
            result.profile_action = "detached"
    except AwsError as exc:
        # Still revoke: old sessions must die even if the instance can fetch new ones.
        result.errors.append(f"could not detach the profile: {exc}")
    document = json.dumps(revoke_policy(now))
    for role in result.roles:
        try:
            aws.call(log, "iam", "put_role_policy", RoleName=role, PolicyName=POLICY_NAME,
                     PolicyDocument=document)
            result.policies_put.append(role)
        except AwsError as exc:
            result.errors.append(f"could not put {POLICY_NAME} on {role}: {exc}")
    return result
