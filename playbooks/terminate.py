"""The Terminate step, behind the evidence gate: snapshots completed, evidence captured."""

from __future__ import annotations

from aws.plans import PlannedCall, checked
from aws.snapshots import attached_volumes, snapshot_states
from aws.termination import terminate
from playbooks.model import Facts, Step, StepContext, StepOutcome
from storage.models import IncidentStatus, StepState

PERMISSIONS = ("ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
               "ec2:ModifyInstanceAttribute", "ec2:TerminateInstances")

NEVER_CLEAN = ("Never try to \"clean\" a compromised instance: nothing on it can be trusted. "
               "Rebuild from a known-good (golden) AMI.")


def missing_evidence(ctx: StepContext, facts: Facts) -> list[str]:
    """Return what the evidence gate still lacks (empty when Terminate may run)."""
    missing: list[str] = []
    snap = facts.runs.get("snapshot")
    if snap is None or snap.state != StepState.SUCCEEDED.value:
        missing.append("snapshots of every volume (run Snapshot volumes)")
    else:
        taken = {s["volume_id"]: s.get("snapshot_id", "")
                 for s in snap.result.get("snapshots", [])}
        attached = [v["VolumeId"] for v in attached_volumes(ctx.aws, ctx.log,
                                                            ctx.incident.instance_id)]
        unsnapped = [v for v in attached if not taken.get(v)]
        if unsnapped:
            missing.append("snapshots of " + ", ".join(unsnapped) + " (attached since)")
        states = snapshot_states(ctx.aws, ctx.log, [i for i in taken.values() if i])
        for snapshot_id in (i for i in taken.values() if i):
            seen = states.get(snapshot_id, {})
            if seen.get("state") != "completed":
                missing.append(f"snapshot {snapshot_id} to be completed (it is "
                               f"{seen.get('state') or 'gone'} {seen.get('progress', '')})"
                               .rstrip())
    if "metadata" not in facts.evidence_kinds:
        missing.append("instance metadata (run Capture evidence)")
    if "console-output" not in facts.evidence_kinds:
        missing.append("console output (run Capture evidence)")
    return missing


def plan_terminate(ctx: StepContext) -> list[PlannedCall]:
    """Dry-run the two calls Terminate makes, and say what is kept."""
    iid = ctx.incident.instance_id
    tasks = [
        checked(ctx.aws, ctx.log, "ec2:ModifyInstanceAttribute", iid,
                "turn termination protection off (Isolate turned it on)",
                "modify_instance_attribute", InstanceId=iid,
                DisableApiTermination={"Value": False}),
        checked(ctx.aws, ctx.log, "ec2:TerminateInstances", iid,
                "terminate for good: memory is lost; volumes marked kept stay",
                "terminate_instances", InstanceIds=[iid]),
    ]
    return [task() for task in tasks]


def run_terminate(ctx: StepContext) -> StepOutcome:
    """Terminate the instance (the gate was checked just before)."""
    done = terminate(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id)
    ok = done.state_after in ("shutting-down", "terminated")
    lines = [f"State: {done.state_before} -> {done.state_after}",
             "Volumes kept after termination: " + (", ".join(done.volumes_kept) or "none"),
             NEVER_CLEAN]
    headline = (f"{done.instance_id} is terminating" if ok
                else f"{done.instance_id} did not start terminating ({done.state_after})")
    return StepOutcome(ok=ok, headline=headline, lines=lines,
                       result={"state_before": done.state_before,
                               "state_after": done.state_after,
                               "volumes_kept": done.volumes_kept},
                       incident_status=IncidentStatus.ERADICATED.value if ok else None,
                       instance_state=done.state_after or None)


TERMINATE = Step(
    id="terminate",
    label="Terminate",
    title="Terminate the instance (after the evidence gate)",
    summary=("Only when every snapshot is completed and metadata and console output are "
             "captured: turns termination protection off and terminates. " + NEVER_CLEAN),
    running_text="Terminating…",
    run=run_terminate,
    permissions=PERMISSIONS,
    confirm=("Terminates {instance} for good: memory and anything not in the snapshots is "
             "lost. Never try to clean it; rebuild from a golden AMI."),
    destructive=True,
    needs_approval=True,
    missing=missing_evidence,
    plan=plan_terminate,
)
