"""Undo an isolation: each interface's original groups, the protection settings it had,
its Auto Scaling and target group membership; read back what each interface now holds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aws.errors import AwsError
from aws.session import Aws, CallLog, run_all


@dataclass
class Released:
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every interface reads back with its original groups and nothing failed."""
        return not self.errors and all(i.get("verified") for i in self.interfaces)

    def to_dict(self) -> dict[str, Any]:
        """Return the release as JSON-ready data."""
        return {**asdict(self), "ok": self.ok}


def release(aws: Aws, log: CallLog, *, instance_id: str, isolation: dict[str, Any]) -> Released:
    """Restore what the isolation record says the instance had."""
    done = Released()
    quarantine = isolation.get("quarantine_group_id", "")
    enis = [e for e in isolation.get("interfaces", [])
            if e.get("groups_before") and e["groups_before"] != [quarantine]]
    skipped = [e["interface_id"] for e in isolation.get("interfaces", []) if e not in enis]
    if skipped:
        done.errors.append("no original groups recorded for " + ", ".join(skipped) +
                           " (they were already isolated): restore them by hand")
    call = functools.partial(aws.call, log)
    tasks: list[Callable[[], dict[str, Any]]] = [
        functools.partial(call, "ec2", "modify_network_interface_attribute",
                          NetworkInterfaceId=e["interface_id"], Groups=e["groups_before"])
        for e in enis]
    p = isolation.get("protection", {})
    labels: list[str] = []
    if p.get("termination_protection_before") is False:
        labels.append("termination protection off")
        tasks.append(functools.partial(call, "ec2", "modify_instance_attribute",
                                       InstanceId=instance_id,
                                       DisableApiTermination={"Value": False}))
    shutdown = p.get("shutdown_behavior_before") or ""
    if shutdown and shutdown != "stop":
        labels.append(f"shutdown behaviour {shutdown}")
        tasks.append(functools.partial(call, "ec2", "modify_instance_attribute",
                                       InstanceId=instance_id,
                                       InstanceInitiatedShutdownBehavior={"Value": shutdown}))
    if p.get("volumes_kept"):
        labels.append("volumes deleted on termination again")
        mappings = [{"DeviceName": v["device"], "Ebs": {"DeleteOnTermination": True}}
                    for v in p["volumes_kept"]]
        tasks.append(functools.partial(call, "ec2", "modify_instance_attribute",
                                       InstanceId=instance_id, BlockDeviceMappings=mappings))
    if p.get("auto_scaling_detached") and p.get("auto_scaling_group"):
        labels.append(f"back in Auto Scaling group {p['auto_scaling_group']} "
                      "(desired capacity +1: lower it if the replacement should go)")
        tasks.append(functools.partial(call, "autoscaling", "attach_instances",
                                       InstanceIds=[instance_id],
                                       AutoScalingGroupName=p["auto_scaling_group"]))
    for target in p.get("target_groups", []):
        if target.get("deregistered"):
            labels.append(f"registered again in {target['target_group_name']}")
            entry = {"Id": target["id"], "Port": target["port"]}
            tasks.append(functools.partial(call, "elbv2", "register_targets",
                                           TargetGroupArn=target["target_group_arn"],
                                           Targets=[entry]))
    results = run_all(tasks)
    for eni, result in zip(enis, results[:len(enis)], strict=True):
        if isinstance(result, AwsError):
            done.errors.append(f"{eni['interface_id']}: {result}")
    for label, result in zip(labels, results[len(enis):], strict=True):
        if isinstance(result, AwsError):
            done.errors.append(f"{label}: {result}")
        else:
            done.restored.append(label)
    if enis:
        described = aws.paginate(log, "ec2", "describe_network_interfaces", "NetworkInterfaces",
                                 NetworkInterfaceIds=[e["interface_id"] for e in enis])
        now = {d["NetworkInterfaceId"]: sorted(g["GroupId"] for g in d.get("Groups", []))
               for d in described}
        for eni in enis:
            after = now.get(eni["interface_id"], [])
            done.interfaces.append({"interface_id": eni["interface_id"],
                                    "groups_before": eni["groups_before"],
                                    "groups_now": after,
                                    "verified": after == sorted(eni["groups_before"])})
    return done
