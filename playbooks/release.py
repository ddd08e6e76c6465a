"""The Release step (false positive): undo the isolation and mark the incident so."""

from __future__ import annotations

from aws.release import release
from playbooks.model import Facts, Step, StepContext, StepOutcome
from storage.models import IncidentStatus, StepState

PERMISSIONS = ("ec2:ModifyNetworkInterfaceAttribute", "ec2:ModifyInstanceAttribute",
               "ec2:DescribeNetworkInterfaces", "autoscaling:AttachInstances",
               "elasticloadbalancing:RegisterTargets")


def isolated_and_alive(ctx: StepContext, facts: Facts) -> list[str]:
    """Release needs a recorded isolation and an instance that was not terminated."""
    missing = []
    isolate = facts.runs.get("isolate")
    if isolate is None or isolate.state != StepState.SUCCEEDED.value:
        missing.append("a completed Isolate to undo")
    terminate = facts.runs.get("terminate")
    if terminate is not None and terminate.state == StepState.SUCCEEDED.value:
        missing.append("an instance that still exists (it was terminated)")
    return missing


def run_release(ctx: StepContext) -> StepOutcome:
    """Restore the instance as it was before Isolate."""
    isolation = ctx.facts.runs["isolate"].result
    done = release(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id,
                   isolation=isolation)
    lines = [f"{i['interface_id']}: back to {', '.join(i['groups_now']) or 'none'}"
             f"{'' if i['verified'] else ' (expected ' + ', '.join(i['groups_before']) + ')'}"
             for i in done.interfaces]
    lines += [f"Restored: {r}" for r in done.restored]
    lines += [f"Problem: {e}" for e in done.errors]
    return StepOutcome(
        ok=done.ok,
        headline=(f"{ctx.incident.instance_id} is released: original groups verified"
                  if done.ok else f"Release of {ctx.incident.instance_id} is INCOMPLETE"),
        lines=lines, result=done.to_dict(),
        incident_status=IncidentStatus.FALSE_POSITIVE.value if done.ok else None,
    )


RELEASE = Step(
    id="release",
    label="Release (false positive)",
    title="Undo the isolation for a false positive",
    summary=("Restores each interface's original security groups, the termination "
             "protection and shutdown behaviour it had, and its Auto Scaling and target "
             "group membership; marks the incident false-positive."),
    running_text="Releasing…",
    run=run_release,
    permissions=PERMISSIONS,
    confirm=("Puts {instance} back on the network with its original security groups and "
             "marks the incident a false positive. Only if you are sure it is clean."),
    destructive=True,
    needs_approval=True,
    missing=isolated_and_alive,
)
