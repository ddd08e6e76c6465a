"""The Snapshot step: preserve every attached volume, and track it to `completed`."""

from __future__ import annotations

from typing import Any

from aws.snapshots import snapshot_states, snapshot_volumes
from playbooks.model import FollowUp, Step, StepContext, StepOutcome
from storage.models import utcnow

PERMISSIONS = ("ec2:DescribeVolumes", "ec2:CreateSnapshot", "ec2:CreateTags",
               "ec2:DescribeSnapshots")


def run_snapshot(ctx: StepContext) -> StepOutcome:
    """Snapshot every volume attached to the incident's instance."""
    taken = snapshot_volumes(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id,
                             incident_id=ctx.incident.id, now=utcnow())
    if not taken:
        return StepOutcome(ok=False, headline=f"{ctx.incident.instance_id} has no attached "
                           "volumes to snapshot")
    failed = [s for s in taken if not s.snapshot_id]
    table = [["volume", "device", "GiB", "snapshot", "state"]] + [
        [s.volume_id, s.device, str(s.size_gib), s.snapshot_id or "—",
         s.state or f"FAILED: {s.error}"] for s in taken]
    done = sum(1 for s in taken if s.state == "completed")
    headline = (f"Snapshots requested for {len(taken) - len(failed)} of {len(taken)} volumes "
                f"({done} completed already)")
    lines = [f"Snapshot of {s.volume_id} ({s.device}) FAILED: {s.error}" for s in failed]
    if not failed:
        lines.append("Progress is posted here until every snapshot is completed; "
                     "Terminate waits for that.")
    return StepOutcome(ok=not failed, headline=headline, lines=lines, table=table,
                       result={"snapshots": [s.to_dict() for s in taken]})


def follow_snapshots(ctx: StepContext, result: dict[str, Any]) -> FollowUp:
    """Look at the snapshots once: done when none is pending."""
    snapshots = list(result.get("snapshots", []))
    ids = [s["snapshot_id"] for s in snapshots if s.get("snapshot_id")]
    states = snapshot_states(ctx.aws, ctx.log, ids)
    for snap in snapshots:
        seen = states.get(snap.get("snapshot_id", ""))
        if seen:
            snap.update(state=seen["state"], progress=seen["progress"],
                        error=seen["error"] or snap.get("error", ""))
    pending = [s for s in snapshots if s.get("state") == "pending"]
    failed = [s for s in snapshots if s.get("state") == "error"]
    if pending:
        text = "Snapshots in progress: " + ", ".join(
            f"{s['snapshot_id']} {s.get('progress') or '0%'}" for s in pending)
        return FollowUp(done=False, text=text, result={"snapshots": snapshots})
    if failed:
        text = ":warning: Snapshots FAILED: " + ", ".join(
            f"{s['snapshot_id']} of {s['volume_id']} ({s.get('error') or 'no reason given'})"
            for s in failed) + ". Run Snapshot again before terminating."
        return FollowUp(done=True, ok=False, text=text, result={"snapshots": snapshots})
    text = ":white_check_mark: Every snapshot is completed: " + ", ".join(
        f"{s['snapshot_id']} ({s['device']})" for s in snapshots if s.get("snapshot_id"))
    return FollowUp(done=True, text=text, result={"snapshots": snapshots,
                                                  "all_completed": True})


SNAPSHOT = Step(
    id="snapshot",
    label="Snapshot volumes",
    title="Snapshot every attached volume",
    summary=("Snapshots every attached EBS volume at once (IR-forensic-snapshot-YYYYMMDD, "
             "tagged with the incident and the source instance, volume and device) and "
             "tracks them until completed."),
    running_text="Snapshotting…",
    run=run_snapshot,
    permissions=PERMISSIONS,
    confirm=("Snapshots every EBS volume attached to {instance} for offline forensics. "
             "Nothing on the instance changes."),
    follow_up=follow_snapshots,
)
