"""Forensic snapshots of every volume attached to an instance, and their progress."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws.errors import AwsError
from aws.session import Aws, CallLog, run_all


@dataclass
class SnapshotInfo:
    volume_id: str
    device: str
    size_gib: int
    snapshot_id: str = ""
    state: str = ""  # pending, completed, error, or "" when the request failed
    progress: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready data."""
        return asdict(self)


def attached_volumes(aws: Aws, log: CallLog, instance_id: str) -> list[dict[str, Any]]:
    """Return every volume attached to the instance (paginated)."""
    return aws.paginate(log, "ec2", "describe_volumes", "Volumes",
                        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])


def snapshot_volumes(aws: Aws, log: CallLog, *, instance_id: str, incident_id: str,
                     now: datetime) -> list[SnapshotInfo]:
    """Request a snapshot of every attached volume at once; a failed request is named."""
    wanted: list[SnapshotInfo] = []
    for volume in attached_volumes(aws, log, instance_id):
        device = next((a.get("Device", "") for a in volume.get("Attachments", [])
                       if a.get("InstanceId") == instance_id), "")
        wanted.append(SnapshotInfo(volume_id=volume["VolumeId"], device=device,
                                   size_gib=int(volume.get("Size", 0))))
    description = f"IR-forensic-snapshot-{now:%Y%m%d}"

    def request(info: SnapshotInfo) -> dict[str, Any]:
        tags = [
            {"Key": "IncidentResponse", "Value": "true"},
            {"Key": "IncidentId", "Value": incident_id},
            {"Key": "SourceInstance", "Value": instance_id},
            {"Key": "SourceVolume", "Value": info.volume_id},
            {"Key": "SourceDevice", "Value": info.device},
            {"Key": "Name", "Value": f"{incident_id} {info.device or info.volume_id}"},
        ]
        return aws.call(log, "ec2", "create_snapshot", VolumeId=info.volume_id,
                        Description=description,
                        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])

    tasks = [functools.partial(request, info) for info in wanted]
    for info, result in zip(wanted, run_all(tasks), strict=True):
        if isinstance(result, AwsError):
            info.state, info.error = "", str(result)
        else:
            info.snapshot_id = str(result["SnapshotId"])
            info.state = str(result.get("State", "pending"))
            info.progress = str(result.get("Progress", ""))
    return wanted


def snapshot_states(aws: Aws, log: CallLog, snapshot_ids: list[str]) -> dict[str, dict[str, str]]:
    """Return each snapshot's state, progress and error message, by id."""
    if not snapshot_ids:
        return {}
    found = aws.paginate(log, "ec2", "describe_snapshots", "Snapshots", SnapshotIds=snapshot_ids)
    return {
        s["SnapshotId"]: {"state": str(s.get("State", "")),
                          "progress": str(s.get("Progress", "")),
                          "error": str(s.get("StateMessage", ""))}
        for s in found
    }
