"""Terminate an instance whose evidence is preserved: protection off, terminate, read back."""

from __future__ import annotations

from dataclasses import dataclass

from aws.instances import describe_instance_raw
from aws.session import Aws, CallLog


@dataclass(frozen=True)
class Terminated:
    instance_id: str
    state_before: str
    state_after: str
    volumes_kept: list[str]


def terminate(aws: Aws, log: CallLog, *, instance_id: str) -> Terminated:
    """Turn termination protection off and terminate; return the states read back."""
    instance, _ = describe_instance_raw(aws, log, instance_id)
    before = str(instance.get("State", {}).get("Name", ""))
    kept = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])
            if m.get("Ebs") and not m["Ebs"].get("DeleteOnTermination", False)]
    aws.call(log, "ec2", "modify_instance_attribute", InstanceId=instance_id,
             DisableApiTermination={"Value": False})
    response = aws.call(log, "ec2", "terminate_instances", InstanceIds=[instance_id])
    changes = response.get("TerminatingInstances", [])
    after = str(changes[0].get("CurrentState", {}).get("Name", "")) if changes else ""
    return Terminated(instance_id=instance_id, state_before=before, state_after=after,
                      volumes_kept=kept)
