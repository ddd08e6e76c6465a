"""What each step changed in AWS, and how to undo it, read from the step's stored result.

Used by the post-incident report. Every reader is defensive: a result from an older build
or a failed run simply yields fewer lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    what: str
    undo: str


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _isolate(result: dict[str, Any], instance_id: str) -> list[Change]:
    changes = []
    for eni in map(_dict, _list(result.get("interfaces"))):
        before = " ".join(map(str, _list(eni.get("groups_before"))))
        if eni.get("already_isolated") or not eni.get("interface_id"):
            continue
        changes.append(Change(
            f"{eni['interface_id']}: security groups {before or '(none)'} replaced by "
            f"{' '.join(map(str, _list(eni.get('groups_after'))))}",
            "the Release step, or `aws ec2 modify-network-interface-attribute "
            f"--network-interface-id {eni['interface_id']} --groups {before}`"))
    for group in _list(result.get("groups_created")):
        changes.append(Change(f"security group {group} created",
                              f"`aws ec2 delete-security-group --group-id {group}` once no "
                              "interface uses it"))
    protection = _dict(result.get("protection"))
    if protection.get("termination_protection_after") and not protection.get(
            "termination_protection_before"):
        changes.append(Change("termination protection turned on",
                              f"`aws ec2 modify-instance-attribute --instance-id {instance_id} "
                              "--no-disable-api-termination`"))
    shutdown_before = protection.get("shutdown_behavior_before")
    shutdown_after = protection.get("shutdown_behavior_after")
    if shutdown_before and shutdown_after and shutdown_before != shutdown_after:
        changes.append(Change(f"shutdown behaviour {shutdown_before} -> {shutdown_after}",
                              f"`aws ec2 modify-instance-attribute --instance-id {instance_id} "
                              f"--instance-initiated-shutdown-behavior {shutdown_before}`"))
    for volume in map(_dict, _list(protection.get("volumes_kept"))):
        if volume.get("volume_id"):
            changes.append(Change(
                f"{volume['volume_id']} ({volume.get('device', '')}) kept on termination",
                "`aws ec2 modify-instance-attribute --block-device-mappings` with "
                "DeleteOnTermination=true, or delete the volume once no longer evidence"))
    group = protection.get("auto_scaling_group")
    if group and protection.get("auto_scaling_detached"):
        changes.append(Change(f"detached from Auto Scaling group {group}",
                              f"`aws autoscaling attach-instances --instance-ids {instance_id} "
                              f"--auto-scaling-group-name {group}`"))
    for target in map(_dict, _list(protection.get("target_groups"))):
        arn = target.get("arn") or target.get("target_group_arn")
        if arn:
            port = f",Port={target['port']}" if target.get("port") else ""
            changes.append(Change(f"deregistered from target group {arn}",
                                  f"`aws elbv2 register-targets --target-group-arn {arn} "
                                  f"--targets Id={target.get('id') or instance_id}{port}`"))
    if protection.get("tagged"):
        changes.append(Change("tagged irbot:incident", f"`aws ec2 delete-tags --resources "
                                                       f"{instance_id} --tags Key=irbot:incident`"))
    return changes


def _snapshot(result: dict[str, Any], _instance: str) -> list[Change]:
    return [Change(f"EBS snapshot {s['snapshot_id']} of {s.get('volume_id', '?')}",
                   f"keep as evidence; `aws ec2 delete-snapshot --snapshot-id {s['snapshot_id']}`"
                   " once the case is closed and retention allows")
            for s in map(_dict, _list(result.get("snapshots"))) if s.get("snapshot_id")]


def _revoke(result: dict[str, Any], instance_id: str) -> list[Change]:
    changes = []
    profile, action = result.get("profile_arn"), result.get("profile_action")
    if profile and action:
        changes.append(Change(f"instance profile {profile}: {action}",
                              "`aws ec2 associate-iam-instance-profile --instance-id "
                              f"{instance_id} --iam-instance-profile Arn={profile}` (after "
                              "removing any replacement profile)"))
    for role in _list(result.get("policies_put")):
        changes.append(Change(f"role {role}: inline policy irbot-revoke-older-sessions denies "
                              f"sessions issued before {result.get('cutoff', '?')}",
                              f"`aws iam delete-role-policy --role-name {role} --policy-name "
                              "irbot-revoke-older-sessions` (only once the role's keys can "
                              "no longer be in an attacker's hands)"))
    return changes


def _terminate(result: dict[str, Any], instance_id: str) -> list[Change]:
    if result.get("state_after") not in ("shutting-down", "terminated"):
        return []
    kept = ", ".join(map(str, _list(result.get("volumes_kept"))))
    return [Change(f"{instance_id} terminated" + (f"; volumes kept: {kept}" if kept else ""),
                   "cannot be undone: Rebuild launches a clean replacement; delete the kept "
                   "volumes when they are no longer evidence")]


def _rebuild(result: dict[str, Any], _instance: str) -> list[Change]:
    changes = []
    if result.get("instance_id"):
        changes.append(Change(f"replacement {result['instance_id']} launched from "
                              f"{result.get('image_id', '?')}",
                              f"`aws ec2 terminate-instances --instance-ids "
                              f"{result['instance_id']}`"))
    for original, copy in _dict(result.get("sanitized")).items():
        changes.append(Change(f"security group {copy} created (copy of {original} without "
                              "SSH from the world)",
                              f"`aws ec2 delete-security-group --group-id {copy}`"))
    return changes


def _restore(result: dict[str, Any], _instance: str) -> list[Change]:
    volume = result.get("volume_id")
    return [Change(f"volume {volume} restored from a backup",
                   f"`aws ec2 delete-volume --volume-id {volume}`")] if volume else []


def _harden(result: dict[str, Any], instance_id: str) -> list[Change]:
    return [Change(f"{instance_id}: IMDSv2 required, hop limit 1; Amazon Inspector EC2 "
                   "scanning enabled",
                   f"`aws ec2 modify-instance-metadata-options --instance-id {instance_id} "
                   "--http-tokens optional` (not advised); `aws inspector2 disable "
                   "--resource-types EC2`")]


def _harden_imds(result: dict[str, Any], _instance: str) -> list[Change]:
    return [Change(f"{i}: IMDSv2 required", f"`aws ec2 modify-instance-metadata-options "
                                            f"--instance-id {i} --http-tokens optional`")
            for i in _list(result.get("done"))]


def _harden_ssh(result: dict[str, Any], _instance: str) -> list[Change]:
    return [Change(f"revoked {rule}", "`aws ec2 authorize-security-group-ingress` with the "
                   "same rule (not advised: use SSM Session Manager)")
            for rule in _list(result.get("revoked"))]


def _release(result: dict[str, Any], _instance: str) -> list[Change]:
    return [Change(f"{eni}: original security groups restored",
                   "isolate again with the Isolate step")
            for eni in _list(result.get("restored"))]


UNDO: dict[str, Callable[[dict[str, Any], str], list[Change]]] = {
    "isolate": _isolate,
    "snapshot": _snapshot,
    "revoke-credentials": _revoke,
    "terminate": _terminate,
    "rebuild": _rebuild,
    "rebuild-restore": _restore,
    "harden": _harden,
    "harden-imds": _harden_imds,
    "harden-ssh": _harden_ssh,
    "release": _release,
}


def changes_of(step_id: str, result: dict[str, Any], instance_id: str) -> list[Change]:
    """Return what a successful run of the step changed, and how to undo each change."""
    reader = UNDO.get(step_id)
    return reader(result, instance_id) if reader else []
