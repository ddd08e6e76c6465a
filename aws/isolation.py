"""Isolate an instance: every interface through the untrack group into quarantine, the
evidence protected, the instance out of its Auto Scaling and target groups, all read back.

Two pipelines run side by side so that protection work never delays containment:
containment (describe, move to untrack, move to quarantine, verify: four round trips with
the groups already in the VPC) and protection (attributes, volumes, tags, Auto Scaling,
target groups). The instance is never stopped or terminated.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from aws.errors import AwsError, NotFound
from aws.instances import describe_instance_raw, interfaces_of
from aws.plans import PlannedCall, checked
from aws.quarantine_groups import (
    QUARANTINE_NAME,
    UNTRACK_NAME,
    VpcGroups,
    ensure_groups,
    find_groups,
    rule_count,
)
from aws.session import Aws, CallLog, run_all

T = TypeVar("T")
INCIDENT_TAG = "irbot:incident"


@dataclass
class InterfaceResult:
    interface_id: str
    device_index: int
    private_ip: str
    groups_before: list[str]
    groups_after: list[str] = field(default_factory=list)
    already_isolated: bool = False
    untracked: bool = False
    quarantined: bool = False
    verified: bool = False
    error: str = ""


@dataclass
class ProtectionResult:
    termination_protection_before: bool | None = None
    termination_protection_after: bool | None = None
    shutdown_behavior_before: str = ""
    shutdown_behavior_after: str = ""
    volumes_kept: list[dict[str, str]] = field(default_factory=list)
    auto_scaling_group: str = ""
    auto_scaling_detached: bool = False
    target_groups: list[dict[str, Any]] = field(default_factory=list)
    tagged: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class IsolationReport:
    instance_id: str
    vpc_id: str
    quarantine_group_id: str = ""
    untrack_group_id: str = ""
    groups_created: list[str] = field(default_factory=list)
    groups_repaired: list[str] = field(default_factory=list)
    interfaces: list[InterfaceResult] = field(default_factory=list)
    protection: ProtectionResult = field(default_factory=ProtectionResult)
    quarantine_rules: int | None = None
    instance_state: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def contained(self) -> bool:
        """True when every interface was read back holding only an empty quarantine group."""
        return (
            bool(self.interfaces)
            and all(i.verified for i in self.interfaces)
            and self.quarantine_rules == 0
        )

    @property
    def already_isolated(self) -> bool:
        """True when the instance was already fully isolated before this run."""
        return bool(self.interfaces) and all(i.already_isolated for i in self.interfaces)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (with the derived verdicts)."""
        data = asdict(self)
        data["contained"] = self.contained
        data["already_isolated"] = self.already_isolated
        return data


def isolate(aws: Aws, log: CallLog, *, instance_id: str, incident_id: str,
            vpc_id: str | None = None) -> IsolationReport:
    """Isolate the instance and return what was done and what was read back."""
    # Separate pools: however many target groups the protection side has to look through,
    # the interface moves never queue behind them.
    with (
        ThreadPoolExecutor(max_workers=16, thread_name_prefix="contain") as pool,
        ThreadPoolExecutor(max_workers=16, thread_name_prefix="protect") as side,
    ):
        def submit(fn: Callable[[], T]) -> Future[T]:
            return pool.submit(fn)

        described = submit(lambda: describe_instance_raw(aws, log, instance_id))
        groups_found = submit(lambda: find_groups(aws, log, vpc_id)) if vpc_id else None
        protection = side.submit(_protect, aws, log, side, instance_id, incident_id, described)

        instance, _owner = described.result()
        actual_vpc = str(instance.get("VpcId", ""))
        report = IsolationReport(instance_id=instance_id, vpc_id=actual_vpc,
                                 instance_state=str(instance.get("State", {}).get("Name", "")))
        if not actual_vpc:
            report.errors.append("the instance is not in a VPC: security groups cannot isolate it")
            report.protection = _settle(protection, report)
            return report
        found = groups_found.result() if groups_found and vpc_id == actual_vpc else None
        if found is None:
            found = find_groups(aws, log, actual_vpc)
        try:
            groups = ensure_groups(aws, log, actual_vpc, found)
        except AwsError as exc:
            report.errors.append(f"could not prepare the quarantine groups in {actual_vpc}: {exc}")
            report.protection = _settle(protection, report)
            return report
        _record_groups(report, groups)
        report.interfaces = [
            InterfaceResult(
                interface_id=eni.interface_id,
                device_index=eni.device_index,
                private_ip=eni.private_ip,
                groups_before=eni.group_ids,
                already_isolated=eni.group_ids == [groups.quarantine_id],
            )
            for eni in interfaces_of(instance)
        ]
        if not report.interfaces:
            report.errors.append("the instance has no network interfaces to isolate")
        _move_all(aws, log, pool, report, groups)
        _verify(aws, log, pool, report, groups)
        report.protection = _settle(protection, report)
    return report


def _record_groups(report: IsolationReport, groups: VpcGroups) -> None:
    report.quarantine_group_id = groups.quarantine_id
    report.untrack_group_id = groups.untrack_id
    report.groups_created = groups.created
    report.groups_repaired = groups.repaired


def _move_all(aws: Aws, log: CallLog, pool: ThreadPoolExecutor, report: IsolationReport,
              groups: VpcGroups) -> None:
    """Move every interface to untrack, all at once, then every one to quarantine."""
    pending = [i for i in report.interfaces if not i.already_isolated]

    def wave(group_id: str) -> dict[str, AwsError | None]:
        """Move every pending interface to `group_id` at once; return each one's error."""
        jobs = {eni.interface_id: pool.submit(
            aws.call, log, "ec2", "modify_network_interface_attribute",
            NetworkInterfaceId=eni.interface_id, Groups=[group_id]) for eni in pending}
        errors: dict[str, AwsError | None] = {}
        for interface_id, job in jobs.items():
            try:
                job.result()
                errors[interface_id] = None
            except AwsError as exc:
                errors[interface_id] = exc
        return errors

    for eni, error in zip(pending, wave(groups.untrack_id).values(), strict=True):
        eni.untracked = error is None
        if error is not None:
            # Still quarantine it: a direct swap beats leaving it open, but its tracked
            # connections may survive, so say so.
            eni.error = f"move to {UNTRACK_NAME} failed ({error}); tracked connections may persist"
    for eni, error in zip(pending, wave(groups.quarantine_id).values(), strict=True):
        eni.quarantined = error is None
        if error is not None:
            eni.error = "; ".join(filter(None, [eni.error,
                                                f"move to {QUARANTINE_NAME} failed: {error}"]))


def _verify(aws: Aws, log: CallLog, pool: ThreadPoolExecutor, report: IsolationReport,
            groups: VpcGroups) -> None:
    """Read every interface and the quarantine group back."""
    ids = [i.interface_id for i in report.interfaces]
    enis = pool.submit(lambda: aws.paginate(
        log, "ec2", "describe_network_interfaces", "NetworkInterfaces", NetworkInterfaceIds=ids))
    group = pool.submit(lambda: aws.call(
        log, "ec2", "describe_security_groups", GroupIds=[groups.quarantine_id]))
    try:
        described = {e["NetworkInterfaceId"]: e for e in enis.result()}
    except AwsError as exc:
        report.errors.append(f"could not read the interfaces back: {exc}")
        described = {}
    for eni in report.interfaces:
        seen = described.get(eni.interface_id)
        if seen is None:
            continue
        eni.groups_after = [g["GroupId"] for g in seen.get("Groups", [])]
        eni.verified = eni.groups_after == [groups.quarantine_id]
    try:
        quarantine = group.result()["SecurityGroups"][0]
        report.quarantine_rules = rule_count(quarantine)
    except (AwsError, IndexError, KeyError) as exc:
        report.errors.append(f"could not read {QUARANTINE_NAME} back: {exc}")


def _settle(protection: Future[ProtectionResult], report: IsolationReport) -> ProtectionResult:
    try:
        return protection.result()
    except AwsError as exc:
        report.errors.append(f"evidence protection failed: {exc}")
        return ProtectionResult(errors=[str(exc)])


def _protect(aws: Aws, log: CallLog, pool: ThreadPoolExecutor, instance_id: str,
             incident_id: str,
             described: Future[tuple[dict[str, Any], str]]) -> ProtectionResult:
    """Protect the evidence and take the instance out of whatever could replace or kill it."""
    result = ProtectionResult()

    def attribute(name: str) -> Any:
        return aws.call(log, "ec2", "describe_instance_attribute",
                        InstanceId=instance_id, Attribute=name)

    termination = pool.submit(attribute, "disableApiTermination")
    shutdown = pool.submit(attribute, "instanceInitiatedShutdownBehavior")
    asg = pool.submit(lambda: aws.call(log, "autoscaling", "describe_auto_scaling_instances",
                                       InstanceIds=[instance_id]))
    target_groups = pool.submit(lambda: aws.paginate(
        log, "elbv2", "describe_target_groups", "TargetGroups"))
    try:
        instance, _owner = described.result()
    except AwsError as exc:
        result.errors.append(str(exc))
        return result
    private_ips = {eni.private_ip for eni in interfaces_of(instance)}

    jobs: list[tuple[str, Future[Any]]] = []
    result.termination_protection_before = _get(termination, result, "DisableApiTermination")
    if result.termination_protection_before is False:
        jobs.append(("termination protection", pool.submit(
            lambda: aws.call(log, "ec2", "modify_instance_attribute", InstanceId=instance_id,
                             DisableApiTermination={"Value": True}))))
    result.shutdown_behavior_before = str(
        _get(shutdown, result, "InstanceInitiatedShutdownBehavior") or "")
    if result.shutdown_behavior_before and result.shutdown_behavior_before != "stop":
        jobs.append(("shutdown behaviour", pool.submit(
            lambda: aws.call(log, "ec2", "modify_instance_attribute", InstanceId=instance_id,
                             InstanceInitiatedShutdownBehavior={"Value": "stop"}))))
    deleting = [
        m for m in instance.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("DeleteOnTermination")
    ]
    if deleting:
        mappings = [{"DeviceName": m["DeviceName"], "Ebs": {"DeleteOnTermination": False}}
                    for m in deleting]
        jobs.append(("keep volumes on termination", pool.submit(
            lambda: aws.call(log, "ec2", "modify_instance_attribute", InstanceId=instance_id,
                             BlockDeviceMappings=mappings))))
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    if tags.get(INCIDENT_TAG) != incident_id:
        jobs.append(("tag", pool.submit(lambda: aws.call(
            log, "ec2", "create_tags", Resources=[instance_id],
            Tags=[{"Key": INCIDENT_TAG, "Value": incident_id}]))))
    else:
        result.tagged = True

    try:
        memberships = asg.result().get("AutoScalingInstances", [])
    except AwsError as exc:
        result.errors.append(f"Auto Scaling lookup: {exc}")
        memberships = []
    for member in memberships:
        result.auto_scaling_group = member["AutoScalingGroupName"]
        # Keep desired capacity: the group launches a healthy replacement, and the
        # compromised instance stays for forensics.
        jobs.append(("auto scaling detach", pool.submit(
            aws.call, log, "autoscaling", "detach_instances", InstanceIds=[instance_id],
            AutoScalingGroupName=result.auto_scaling_group,
            ShouldDecrementDesiredCapacity=False)))

    for target in _registered_targets(aws, log, pool, target_groups, result, instance_id,
                                      private_ips):
        result.target_groups.append(target)

    def deregister(target: dict[str, Any]) -> Any:
        entry = {"Id": target["id"], "Port": target["port"]}
        if target.get("availability_zone"):
            entry["AvailabilityZone"] = target["availability_zone"]
        return aws.call(log, "elbv2", "deregister_targets",
                        TargetGroupArn=target["target_group_arn"], Targets=[entry])

    dereg = [(t, pool.submit(deregister, t)) for t in result.target_groups]

    for label, job in jobs:
        try:
            job.result()
        except AwsError as exc:
            result.errors.append(f"{label}: {exc}")
            continue
        if label == "termination protection":
            result.termination_protection_after = True
        elif label == "shutdown behaviour":
            result.shutdown_behavior_after = "stop"
        elif label == "keep volumes on termination":
            result.volumes_kept = [
                {"device": m["DeviceName"], "volume_id": m["Ebs"].get("VolumeId", "")}
                for m in deleting
            ]
        elif label == "tag":
            result.tagged = True
        elif label == "auto scaling detach":
            result.auto_scaling_detached = True
    if result.termination_protection_before:
        result.termination_protection_after = True
    if result.shutdown_behavior_before == "stop":
        result.shutdown_behavior_after = "stop"
    for target, job in dereg:
        try:
            job.result()
            target["deregistered"] = True
        except AwsError as exc:
            target["deregistered"] = False
            result.errors.append(f"deregister from {target['target_group_name']}: {exc}")
    return result


def _get(job: Future[Any], result: ProtectionResult, key: str) -> Any:
    try:
        return job.result().get(key, {}).get("Value")
    except AwsError as exc:
        result.errors.append(f"read {key}: {exc}")
        return None


def _registered_targets(aws: Aws, log: CallLog, pool: ThreadPoolExecutor,
                        target_groups: Future[list[dict[str, Any]]], result: ProtectionResult,
                        instance_id: str, private_ips: set[str]) -> list[dict[str, Any]]:
    """Return the target group registrations of the instance (by id, or by IP)."""
    try:
        groups = target_groups.result()
    except AwsError as exc:
        result.errors.append(f"target group lookup: {exc}")
        return []
    wanted = [g for g in groups if g.get("TargetType", "instance") in ("instance", "ip")]
    healths = [(g, pool.submit(lambda g=g: aws.call(  # type: ignore[misc]
        log, "elbv2", "describe_target_health", TargetGroupArn=g["TargetGroupArn"])))
        for g in wanted]
    found: list[dict[str, Any]] = []
    for group, health in healths:
        try:
            descriptions = health.result().get("TargetHealthDescriptions", [])
        except NotFound:
            continue  # deleted since it was listed
        except AwsError as exc:
            result.errors.append(f"target health of {group['TargetGroupName']}: {exc}")
            continue
        for description in descriptions:
            target = description.get("Target", {})
            if target.get("Id") == instance_id or target.get("Id") in private_ips:
                found.append({
                    "target_group_arn": group["TargetGroupArn"],
                    "target_group_name": group["TargetGroupName"],
                    "id": target["Id"],
                    "port": target.get("Port"),
                    "availability_zone": target.get("AvailabilityZone", ""),
                })
    return found


def plan_isolation(aws: Aws, log: CallLog, *, instance_id: str,
                   vpc_id: str | None = None) -> list[PlannedCall]:
    """Describe, call by call, what isolating the instance will change, dry-running the
    EC2 calls so a missing permission shows before anyone approves."""
    instance, _owner = describe_instance_raw(aws, log, instance_id)
    vpc = str(instance.get("VpcId", "") or vpc_id or "")
    found = find_groups(aws, log, vpc) if vpc else {}
    tasks: list[Callable[[], PlannedCall]] = []
    if QUARANTINE_NAME not in found or UNTRACK_NAME not in found:
        tasks.append(checked(aws, log, "ec2:CreateSecurityGroup", vpc,
                             f"create {QUARANTINE_NAME} / {UNTRACK_NAME} in {vpc}",
                             "create_security_group", GroupName="irbot-dry-run",
                             Description="dry run", VpcId=vpc))
    for eni in interfaces_of(instance):
        tasks.append(checked(
            aws, log, "ec2:ModifyNetworkInterfaceAttribute", eni.interface_id,
            f"{', '.join(eni.group_ids) or 'no groups'} -> {UNTRACK_NAME} -> {QUARANTINE_NAME}",
            "modify_network_interface_attribute", NetworkInterfaceId=eni.interface_id,
            Groups=eni.group_ids))
    tasks.append(checked(aws, log, "ec2:ModifyInstanceAttribute", instance_id,
                         "termination protection on, shutdown behaviour stop, volumes kept",
                         "modify_instance_attribute", InstanceId=instance_id,
                         DisableApiTermination={"Value": True}))
    tasks.append(checked(aws, log, "ec2:CreateTags", instance_id,
                         f"tag {INCIDENT_TAG}", "create_tags", Resources=[instance_id],
                         Tags=[{"Key": INCIDENT_TAG, "Value": "dry-run"}]))
    planned = [p for p in run_all(tasks) if isinstance(p, PlannedCall)]
    planned.append(PlannedCall("autoscaling:DetachInstances", instance_id,
                               "detach from its Auto Scaling group, if any (capacity kept)"))
    planned.append(PlannedCall("elasticloadbalancing:DeregisterTargets", instance_id,
                               "deregister from the target groups it is in, if any"))
    return planned
