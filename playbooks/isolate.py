"""The Isolate step: contain the instance on the network and protect the evidence."""

from __future__ import annotations

from aws.isolation import IsolationReport, isolate, plan_isolation
from aws.plans import PlannedCall
from playbooks.model import ActionButton, Step, StepContext, StepOutcome
from storage.models import IncidentStatus

PERMISSIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:ModifyInstanceAttribute",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DetachInstances",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
)


def run_isolate(ctx: StepContext) -> StepOutcome:
    """Isolate the incident's instance and describe what was done and verified."""
    report = isolate(
        ctx.aws,
        ctx.log,
        instance_id=ctx.incident.instance_id,
        incident_id=ctx.incident.id,
        vpc_id=ctx.incident.vpc_id,
    )
    verify = [ActionButton(label="Verify isolation (flow logs)", action="", value="",
                           step_id="flowlogs", params={"since_isolation": "1"})]
    return StepOutcome(
        ok=report.contained,
        headline=_headline(report),
        lines=describe(report),
        result=report.to_dict(),
        buttons=verify if report.contained else [],
        incident_status=IncidentStatus.CONTAINED.value if report.contained else None,
    )


def plan_isolate(ctx: StepContext) -> list[PlannedCall]:
    """Describe what isolating the incident's instance will change, dry-run checked."""
    return plan_isolation(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id,
                          vpc_id=ctx.incident.vpc_id)


def _headline(report: IsolationReport) -> str:
    count = len(report.interfaces)
    noun = "interface" if count == 1 else "interfaces"
    if report.contained and report.already_isolated:
        return (f"{report.instance_id} was already isolated: verified {count} {noun} in "
                f"quarantine, nothing changed")
    if report.contained:
        return f"{report.instance_id} is isolated: {count} {noun} in quarantine, verified"
    return f"Isolation of {report.instance_id} is NOT verified: read the details"


def describe(report: IsolationReport) -> list[str]:
    """Return the report as lines a responder can read at a glance."""
    lines: list[str] = []
    for eni in report.interfaces:
        before = ", ".join(eni.groups_before) or "none"
        after = ", ".join(eni.groups_after) or "unknown"
        mark = "verified" if eni.verified else "NOT verified"
        extra = " (already isolated)" if eni.already_isolated else ""
        lines.append(f"{eni.interface_id} (eth{eni.device_index}, {eni.private_ip}): "
                     f"{before} -> {after}: {mark}{extra}")
        if eni.error:
            lines.append(f"  {eni.interface_id}: {eni.error}")
    rules = report.quarantine_rules
    lines.append(
        f"Quarantine group {report.quarantine_group_id}: "
        + ("no inbound and no outbound rules" if rules == 0 else f"{rules} rules (expected 0)"
           if rules is not None else "could not be read")
    )
    if report.groups_created:
        lines.append(f"Created in {report.vpc_id}: {', '.join(report.groups_created)}")
    if report.groups_repaired:
        lines.append(f"Repaired rules of: {', '.join(report.groups_repaired)}")
    p = report.protection
    lines.append(
        "Termination protection: "
        + _change(p.termination_protection_before, p.termination_protection_after)
    )
    lines.append(
        "Shutdown behaviour: " + _change(p.shutdown_behavior_before or None,
                                         p.shutdown_behavior_after or None)
    )
    if p.volumes_kept:
        lines.append("Volumes kept on termination: "
                     + ", ".join(f"{v['volume_id']} ({v['device']})" for v in p.volumes_kept))
    if p.auto_scaling_group:
        state = "detached (desired capacity kept)" if p.auto_scaling_detached else "NOT detached"
        lines.append(f"Auto Scaling group {p.auto_scaling_group}: {state}")
    for target in p.target_groups:
        state = "deregistered" if target.get("deregistered") else "NOT deregistered"
        lines.append(f"Target group {target['target_group_name']} "
                     f"({target['id']}:{target['port']}): {state}")
    lines.append(f"Instance state: {report.instance_state or 'unknown'} "
                 "(never stopped or terminated by isolation)")
    for error in report.errors + p.errors:
        lines.append(f"Problem: {error}")
    return lines


def _change(before: object, after: object) -> str:
    if before is None:
        return "unknown"
    if before == after:
        return f"{_word(after)} (unchanged)"
    return f"{_word(before)} -> {_word(after)}"


def _word(value: object) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value) if value is not None else "unknown"


ISOLATE = Step(
    id="isolate",
    label="Isolate",
    title="Isolate the instance on the network",
    summary=(
        "Moves every network interface through an allow-all group (cutting tracked "
        "connections) into an empty quarantine group, turns termination protection on, "
        "keeps volumes on termination, detaches it from Auto Scaling and target groups. "
        "Never stops or terminates it."
    ),
    running_text="Isolating…",
    run=run_isolate,
    plan=plan_isolate,
    permissions=PERMISSIONS,
    confirm=(
        "Moves every network interface of {instance} into the quarantine group: no traffic "
        "in or out, open connections cut. Turns termination protection on; takes it out of "
        "Auto Scaling and target groups. Run triage first: SSM cannot reach it afterwards."
    ),
    destructive=True,
)
