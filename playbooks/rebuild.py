"""The Rebuild step: a hardened replacement from a golden AMI, and restoring application
data from backups taken before the compromise."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws.errors import AwsError
from aws.instances import describe_instance_raw
from aws.plans import PlannedCall
from aws.rebuild import Backup, data_backups, launch_replacement, restore_snapshot, safe_groups
from playbooks.model import (
    ActionButton,
    Facts,
    Question,
    Step,
    StepChoice,
    StepContext,
    StepOutcome,
)
from storage.approvals import aware
from storage.models import IncidentStatus, StepState

PERMISSIONS = ("ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
               "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress",
               "ec2:CreateTags", "ec2:RunInstances", "iam:PassRole",
               "ec2:DescribeSnapshots", "backup:ListRecoveryPointsByResource")
RESTORE_PERMISSIONS = ("ec2:CreateVolume", "ec2:DescribeVolumes", "ec2:AttachVolume",
                       "ec2:CreateTags")
AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
SNAPSHOT = re.compile(r"^snap-[0-9a-f]{8,17}$")
DEVICE = re.compile(r"^/dev/(sd[f-p]|xvd[f-p])$")
MONITOR = ("Monitor the replacement for 24 to 48 hours and run a vulnerability scan before "
           "it returns to production.")


def check_rebuild_params(params: Mapping[str, str]) -> dict[str, str]:
    """Accept ami=ami-... (the AMI picked instead of IRBOT_GOLDEN_AMI)."""
    if set(params) - {"ami"} or ("ami" in params and not AMI.match(params["ami"])):
        raise ValueError("the only option is ami=ami-0123456789abcdef0")
    return dict(params)


def _original_groups(ctx: StepContext, record: dict[str, Any]) -> list[str]:
    isolate = ctx.facts.runs.get("isolate")
    groups: list[str] = []
    if isolate is not None and isolate.state == StepState.SUCCEEDED.value:
        for eni in isolate.result.get("interfaces", []):
            groups += [g for g in eni.get("groups_before", []) if g not in groups]
    if not groups:
        groups = [g["id"] for g in ctx.incident.instance.get("security_groups", [])]
    quarantine = isolate.result.get("quarantine_group_id") if isolate else None
    return [g for g in groups if g != quarantine] or [
        g["GroupId"] for g in record.get("SecurityGroups", [])]


def plan_rebuild(ctx: StepContext) -> list[PlannedCall]:
    """Say what Rebuild will launch; nothing about the old instance changes."""
    ami = ctx.params.get("ami") or ctx.config.get("golden_ami", "") or "(asked when run)"
    info = ctx.incident.instance or {}
    groups = ", ".join(g.get("id", "") for g in info.get("security_groups", []))
    return [
        PlannedCall("ec2:CreateSecurityGroup", groups or "-",
                    "copy any of these groups that opens SSH to the world, without that rule"),
        PlannedCall("ec2:RunInstances", ami,
                    f"launch one replacement in {info.get('subnet_id') or 'the same subnet'} "
                    "with IMDSv2 required, hop limit 1, no key pair, the same instance "
                    "profile; the compromised instance is not touched"),
    ]


def run_rebuild(ctx: StepContext) -> StepOutcome:
    """Launch the replacement and list the backups of its data from before the compromise."""
    ami = ctx.params.get("ami") or ctx.config.get("golden_ami", "")
    if not ami:
        return StepOutcome(ok=False, headline="No golden AMI: set IRBOT_GOLDEN_AMI (or pass "
                           "one) before rebuilding", lines=[
                               "Use an AMI from your image pipeline; never one that was "
                               "running during the incident."])
    record, _ = describe_instance_raw(ctx.aws, ctx.log, ctx.incident.instance_id)
    if record.get("ImageId") == ami:
        return StepOutcome(ok=False, headline=f"{ami} is the compromised instance's own AMI: "
                           "pick a golden AMI from your pipeline")
    groups, copies = safe_groups(ctx.aws, ctx.log, group_ids=_original_groups(ctx, record),
                                 vpc_id=ctx.incident.vpc_id or "", incident_id=ctx.incident.id)
    profile = str(ctx.incident.instance.get("instance_profile_arn", ""))
    new = launch_replacement(ctx.aws, ctx.log, original=record, image_id=ami, groups=groups,
                             profile_arn=profile, incident_id=ctx.incident.id)
    new.sanitized = copies
    compromised_at, why = compromise_time(ctx)
    backups, backup_lines, buttons = _backups(ctx, record, compromised_at, why)
    lines = [
        f"Replacement {new.instance_id} from {ami} in {new.subnet_id} ({new.state})",
        "Security groups: " + ", ".join(groups) + (
            " (copies without SSH from the world: " + ", ".join(
                f"{o} -> {c}" for o, c in copies.items()) + ")" if copies else ""),
        f"Instance profile: {profile or 'none'}; IMDSv2 required, hop limit 1; no key pair",
        *backup_lines,
        MONITOR,
    ]
    return StepOutcome(
        ok=new.state in ("pending", "running"),
        headline=f"Replacement {new.instance_id} launched from {ami}",
        lines=lines, buttons=buttons, choice=EARLIER,
        result={**new.to_dict(), "backups": _listed(backups)},
        incident_status=IncidentStatus.RECOVERED.value,
    )


EARLIER = StepChoice(
    placeholder="The compromise began earlier…",
    step_id="rebuild-backups",
    options=[(label, {"hours_before": hours}) for hours, label in (
        ("1", "1 h before"), ("6", "6 h before"), ("24", "1 day before"),
        ("72", "3 days before"), ("168", "7 days before"), ("720", "30 days before"))],
)


def _listed(backups: list[Backup]) -> list[dict[str, Any]]:
    return [{"id": b.backup_id, "snapshot_id": b.snapshot_id, "source": b.source,
             "volume_id": b.volume_id, "device": b.device, "created": b.created.isoformat(),
             "before_compromise": b.before_compromise} for b in backups]


def recorded_volumes(ctx: StepContext) -> list[dict[str, str]]:
    """Return the volumes the incident recorded (snapshots taken, volumes kept), for an
    instance that no longer lists them (terminated)."""
    found: dict[str, str] = {}
    snapshot = ctx.facts.runs.get("snapshot")
    for item in (snapshot.result or {}).get("snapshots", []) if snapshot else []:
        if item.get("volume_id"):
            found.setdefault(str(item["volume_id"]), str(item.get("device", "")))
    isolate = ctx.facts.runs.get("isolate")
    kept = ((isolate.result or {}).get("protection") or {}).get("volumes_kept", []) \
        if isolate else []
    for item in kept:
        if item.get("volume_id"):
            found.setdefault(str(item["volume_id"]), str(item.get("device", "")))
    return [{"volume_id": v, "device": d} for v, d in found.items()]


def _backups(ctx: StepContext, record: dict[str, Any], compromised_at: datetime,
             why: str) -> tuple[list[Backup], list[str], list[ActionButton]]:
    """List the data volumes' backups against the compromise time, with Restore buttons."""
    root = record.get("RootDeviceName", "")
    attached = [{"volume_id": m["Ebs"]["VolumeId"], "device": m["DeviceName"]}
                for m in record.get("BlockDeviceMappings", []) if m.get("Ebs")]
    volumes = [v for v in attached or recorded_volumes(ctx) if v["device"] != root]
    backups, problems = data_backups(ctx.aws, ctx.log, volumes=volumes,
                                     compromised_at=compromised_at,
                                     account_id=ctx.incident.account_id)
    when = compromised_at.strftime("%Y-%m-%d %H:%M")
    lines = [f"Backups of the data volumes (compromise taken as {when} UTC, {why}):"]
    lines += [f"  {b.backup_id} of {b.volume_id} ({b.device}) {b.created:%Y-%m-%d %H:%M} "
              + ("before the compromise" if b.before_compromise else
                 "AFTER THE COMPROMISE: may hold the attacker's changes") for b in backups[:20]]
    if not backups:
        lines.append("  none found" if volumes else "  the instance had no data volumes")
    lines += [f"Problem: {p}" for p in problems]
    buttons = []
    for b in [b for b in backups if b.snapshot_id][:8]:
        params = {"snapshot": b.snapshot_id, "device": b.device}
        origin = " AWS Backup" if b.source == "aws-backup" else ""
        label = f"Restore{origin} {b.snapshot_id} ({b.device})"
        if not b.before_compromise:
            params["after_compromise"] = "1"
            label = f"⚠ Restore{origin} {b.snapshot_id} (AFTER the compromise)"
        if DEVICE.match(b.device):
            buttons.append(ActionButton(label=label, action="", value="",
                                        step_id="rebuild-restore", params=params))
    return backups, lines, buttons


def compromise_time(ctx: StepContext) -> tuple[datetime, str]:
    """Return when the compromise began, as far as irbot knows, and why it thinks so."""
    opened = aware(ctx.incident.opened_at)
    first = ctx.facts.first_finding_at
    if first is not None and first < opened:
        return first, "when GuardDuty first saw the activity"
    return opened, "when the incident opened"


def check_backups_params(params: Mapping[str, str]) -> dict[str, str]:
    """Accept hours_before=1|6|24|72|168|720."""
    if set(params) != {"hours_before"} or params["hours_before"] not in {
            "1", "6", "24", "72", "168", "720"}:
        raise ValueError("pick how long before the incident the compromise began")
    return dict(params)


def run_backups(ctx: StepContext) -> StepOutcome:
    """List the backups again against an earlier compromise time."""
    hours = int(ctx.params["hours_before"])
    record, _ = describe_instance_raw(ctx.aws, ctx.log, ctx.incident.instance_id)
    known, why = compromise_time(ctx)
    cutoff = known - timedelta(hours=hours)
    backups, lines, buttons = _backups(ctx, record, cutoff,
                                       f"{hours} h before {why.removeprefix('when ')}, as "
                                       "you said")
    clean = sum(1 for b in backups if b.before_compromise)
    return StepOutcome(ok=True, headline=f"{clean} of {len(backups)} backups are from before "
                       f"{cutoff:%Y-%m-%d %H:%M} UTC", lines=lines, buttons=buttons,
                       result={"backups": _listed(backups), "cutoff": cutoff.isoformat()})


def check_restore_params(params: Mapping[str, str]) -> dict[str, str]:
    """Accept snapshot=snap-..., device=/dev/sdf..., and after_compromise=1."""
    if not SNAPSHOT.match(params.get("snapshot", "")) or not DEVICE.match(
            params.get("device", "")) or set(params) - {"snapshot", "device",
                                                        "after_compromise"}:
        raise ValueError("restore needs snapshot=snap-... and device=/dev/sdf to /dev/sdp")
    return dict(params)


def rebuilt(ctx: StepContext, facts: Facts) -> list[str]:
    """Restoring needs a replacement."""
    run = facts.runs.get("rebuild")
    if run is None or run.state != StepState.SUCCEEDED.value:
        return ["a replacement (run Rebuild first)"]
    return []


def run_restore(ctx: StepContext) -> StepOutcome:
    """Restore one of the listed snapshots onto the replacement."""
    rebuild = ctx.facts.runs["rebuild"].result
    snapshot_id = ctx.params["snapshot"]
    # The latest listing decides (a later, earlier cutoff re-marks what is clean).
    listing = ctx.facts.runs.get("rebuild-backups")
    source = (listing.result if listing is not None
              and listing.state == StepState.SUCCEEDED.value else rebuild)
    listed = {b["snapshot_id"]: b for b in source.get("backups", []) if b.get("snapshot_id")}
    backup = listed.get(snapshot_id)
    if backup is None:
        return StepOutcome(ok=False, headline=f"{snapshot_id} is not one of this incident's "
                           "listed backups")
    if not backup["before_compromise"] and ctx.params.get("after_compromise") != "1":
        return StepOutcome(ok=False, headline=f"{snapshot_id} was taken after the compromise: "
                           "use the button that says so to restore it anyway")
    try:
        volume = restore_snapshot(ctx.aws, ctx.log, snapshot_id=snapshot_id,
                                  instance_id=rebuild["instance_id"],
                                  availability_zone=rebuild["availability_zone"],
                                  device=ctx.params["device"], incident_id=ctx.incident.id,
                                  wait_seconds=float(ctx.config.get("restore_wait_seconds",
                                                                    "300")),
                                  poll_seconds=float(ctx.config.get("restore_poll_seconds",
                                                                    "5")))
    except AwsError as exc:
        return StepOutcome(ok=False, headline=f"Restoring {snapshot_id} failed: {exc}")
    warning = ([] if backup["before_compromise"] else
               ["This data was taken AFTER the compromise: check it for the attacker's "
                "changes before trusting it."])
    return StepOutcome(ok=True, headline=f"{volume} restored from {snapshot_id} and attached "
                       f"to {rebuild['instance_id']} as {ctx.params['device']}",
                       lines=[*warning, MONITOR], result={"volume_id": volume})


REBUILD = Step(
    id="rebuild",
    label="Rebuild",
    title="Launch a hardened replacement from a golden AMI",
    summary=("Launches a replacement from IRBOT_GOLDEN_AMI in the same subnet with the "
             "original security groups (copies without SSH from the world where needed), the "
             "same instance profile, IMDSv2 required with hop limit 1 and no key pair; lists "
             "the data volumes' EBS snapshots and AWS Backup recovery points, newest first, "
             "marking those taken after the compromise, each snapshot with a Restore button."),
    running_text="Rebuilding…",
    run=run_rebuild,
    permissions=PERMISSIONS,
    confirm=("Launches a replacement for {instance} from the golden AMI, hardened (IMDSv2, no "
             "key pair, no SSH from the world). The old instance is not touched."),
    needs_approval=True,
    check_params=check_rebuild_params,
    question=Question(param="ami", label="Golden AMI id",
                      hint="ami-… from your image pipeline, never one that ran during the "
                           "incident (set IRBOT_GOLDEN_AMI to skip this question)",
                      pattern=AMI.pattern),
    question_config="golden_ami",
    plan=plan_rebuild,
)
BACKUPS = Step(
    id="rebuild-backups",
    label="List backups before an earlier time",
    title="List the data backups against an earlier compromise time",
    summary=("Lists the data volumes' backups again against a compromise time the responder "
             "gives (hours before the first finding, or the incident's opening), with Restore "
             "buttons. Read-only."),
    running_text="Listing backups…",
    run=run_backups,
    permissions=("ec2:DescribeInstances", "ec2:DescribeSnapshots",
                 "backup:ListRecoveryPointsByResource"),
    missing=rebuilt,
    repeatable=True,
    check_params=check_backups_params,
)
RESTORE = Step(
    id="rebuild-restore",
    label="Restore data to the replacement",
    title="Restore a data volume onto the replacement",
    summary=("Creates a volume from a listed snapshot and attaches it to the replacement; a "
             "snapshot from after the compromise only through its own warning button."),
    running_text="Restoring…",
    run=run_restore,
    permissions=RESTORE_PERMISSIONS,
    confirm="Creates a volume from the chosen snapshot and attaches it to the replacement.",
    missing=rebuilt,
    repeatable=True,
    check_params=check_restore_params,
)
