"""The Harden step, and the two changes it offers for the rest of the VPC."""

from __future__ import annotations

import functools

from aws.errors import AwsError
from aws.hardening import (
    enable_inspector,
    instances_without_imdsv2,
    require_imdsv2,
    revoke_rules,
    ssh_open_to_world,
)
from aws.session import run_all
from playbooks.model import ActionButton, Step, StepContext, StepOutcome

PERMISSIONS = ("ec2:ModifyInstanceMetadataOptions", "ec2:DescribeInstances",
               "ec2:DescribeSecurityGroups", "inspector2:Enable",
               "inspector2:BatchGetAccountStatus", "iam:CreateServiceLinkedRole")


def run_harden(ctx: StepContext) -> StepOutcome:
    """Harden the instance, report what in the VPC still needs it, enable Inspector."""
    iid, vpc = ctx.incident.instance_id, ctx.incident.vpc_id or ""
    lines, problems = [], []
    try:
        options = require_imdsv2(ctx.aws, ctx.log, iid)
        lines.append(f"{iid}: IMDSv2 {options.get('HttpTokens', 'required')}, hop limit "
                     f"{options.get('HttpPutResponseHopLimit', 1)}")
    except AwsError as exc:
        problems.append(f"IMDSv2 on {iid}: {exc}")
    others = [o for o in instances_without_imdsv2(ctx.aws, ctx.log, vpc) if o["instance_id"] != iid]
    ssh = ssh_open_to_world(ctx.aws, ctx.log, vpc)
    try:
        inspector = enable_inspector(ctx.aws, ctx.log, ctx.incident.account_id)
        lines.append(f"Amazon Inspector EC2 scanning: {inspector}")
    except AwsError as exc:
        problems.append(f"Amazon Inspector: {exc}")
    lines.append(f"Other instances in {vpc} still allowing IMDSv1 or hop limit > 1: "
                 + (", ".join(f"{o['instance_id']} {o['name']}".strip() for o in others)
                    or "none"))
    lines.append("Security group rules opening SSH (22) to the world: "
                 + ("; ".join(r.describe() for r in ssh) or "none"))
    lines.append("Use SSM Session Manager for shell access: it needs no open port and "
                 "CloudTrail records every session.")
    lines += [f"Problem: {p}" for p in problems]
    buttons = []
    if others:
        buttons.append(ActionButton(label=f"Require IMDSv2 on {len(others)} more instances",
                                    action="", value="", step_id=HARDEN_IMDS.id))
    if ssh:
        buttons.append(ActionButton(label=f"Revoke {len(ssh)} SSH-to-world rules",
                                    action="", value="", step_id=HARDEN_SSH.id))
    return StepOutcome(ok=not problems, headline=f"{iid} hardened" if not problems else
                       f"Hardening of {iid} is incomplete", lines=lines, buttons=buttons,
                       result={"imds_lacking": others,
                               "ssh_rules": [r.describe() for r in ssh]})


def run_harden_imds(ctx: StepContext) -> StepOutcome:
    """Require IMDSv2 on every instance of the VPC that lacks it (found afresh)."""
    lacking = instances_without_imdsv2(ctx.aws, ctx.log, ctx.incident.vpc_id or "")
    results = run_all([functools.partial(require_imdsv2, ctx.aws, ctx.log, i["instance_id"])
                       for i in lacking])
    failed = [f"{i['instance_id']}: {r}" for i, r in zip(lacking, results, strict=True)
              if isinstance(r, AwsError)]
    done = [i["instance_id"] for i, r in zip(lacking, results, strict=True)
            if not isinstance(r, AwsError)]
    return StepOutcome(ok=not failed, headline=f"IMDSv2 now required on {len(done)} instances",
                       lines=[f"Done: {', '.join(done) or 'none'}",
                              *(f"Problem: {f}" for f in failed)],
                       result={"done": done, "failed": failed})


def run_harden_ssh(ctx: StepContext) -> StepOutcome:
    """Revoke every rule in the VPC that opens SSH to the world (found afresh)."""
    rules = ssh_open_to_world(ctx.aws, ctx.log, ctx.incident.vpc_id or "")
    results = revoke_rules(ctx.aws, ctx.log, rules)
    failed = [f"{r.describe()}: {e}" for r, e in results if e]
    done = [r.describe() for r, e in results if not e]
    return StepOutcome(ok=not failed, headline=f"Revoked {len(done)} SSH-to-world rules",
                       lines=[*(f"Revoked: {d}" for d in done),
                              *(f"Problem: {f}" for f in failed)],
                       result={"revoked": done, "failed": failed})


HARDEN = Step(
    id="harden",
    label="Harden",
    title="Require IMDSv2, close SSH to the world, enable Inspector",
    summary=("Requires IMDSv2 with hop limit 1 on the instance, lists the VPC's other "
             "instances without it and the security group rules opening port 22 to 0.0.0.0/0 "
             "or ::/0 (each with a button to fix them), and enables Amazon Inspector for EC2."),
    running_text="Hardening…",
    run=run_harden,
    permissions=PERMISSIONS,
    confirm=("Requires IMDSv2 (hop limit 1) on {instance} and enables Amazon Inspector for "
             "EC2 in the account. Applications using IMDSv1 on it stop getting metadata."),
)
HARDEN_IMDS = Step(
    id="harden-imds",
    label="Require IMDSv2 in the VPC",
    title="Require IMDSv2 on the VPC's other instances",
    summary="Requires IMDSv2 with hop limit 1 on every instance of the VPC that lacks it.",
    running_text="Requiring IMDSv2…",
    run=run_harden_imds,
    permissions=("ec2:DescribeInstances", "ec2:ModifyInstanceMetadataOptions"),
    confirm=("Requires IMDSv2 on every instance in the VPC that still allows IMDSv1. "
             "Applications using IMDSv1 on them stop getting metadata."),
    destructive=True,
)
HARDEN_SSH = Step(
    id="harden-ssh",
    label="Revoke SSH-to-world rules",
    title="Revoke the VPC's rules opening SSH to the world",
    summary="Revokes every security group rule in the VPC opening port 22 to 0.0.0.0/0 or ::/0.",
    running_text="Revoking SSH rules…",
    run=run_harden_ssh,
    permissions=("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress"),
    confirm=("Revokes every rule in the VPC that opens port 22 to the whole internet. Use SSM "
             "Session Manager for shell access instead."),
    destructive=True,
)
