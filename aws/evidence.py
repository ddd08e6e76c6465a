"""Collect an instance's evidence: its full record and attributes, console output and
console screenshot (where the API supports it)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws.errors import AwsError
from aws.instances import describe_instance_raw
from aws.session import Aws, CallLog, run_all

ATTRIBUTES = (
    "instanceType", "kernel", "ramdisk", "userData", "disableApiTermination",
    "instanceInitiatedShutdownBehavior", "rootDeviceName", "blockDeviceMapping",
    "productCodes", "sourceDestCheck", "groupSet", "ebsOptimized", "enaSupport",
    "sriovNetSupport", "disableApiStop",
)


@dataclass
class Collected:
    """What was collected; `unavailable` names each item that could not be, and why."""

    metadata: bytes
    console_output: bytes | None = None
    screenshot: bytes | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def collect_evidence(aws: Aws, log: CallLog, *, instance_id: str,
                     collected_at: datetime) -> Collected:
    """Collect everything at once; what the API cannot give is recorded, not raised."""
    instance, owner = describe_instance_raw(aws, log, instance_id)
    profile_name = str(instance.get("IamInstanceProfile", {}).get("Arn", "")).rsplit("/", 1)[-1]
    group_ids = sorted({g["GroupId"] for eni in instance.get("NetworkInterfaces", [])
                        for g in eni.get("Groups", [])}
                       | {g["GroupId"] for g in instance.get("SecurityGroups", [])})
    tasks: list[Any] = [
        lambda a=a: aws.call(log, "ec2", "describe_instance_attribute",
                             InstanceId=instance_id, Attribute=a)
        for a in ATTRIBUTES
    ]
    tasks.append(lambda: aws.call(log, "ec2", "get_console_output", InstanceId=instance_id,
                                  Latest=True))
    tasks.append(lambda: console_screenshot(aws, log, instance_id))
    tasks.append(lambda: aws.call(log, "ec2", "describe_security_groups",
                                  GroupIds=group_ids) if group_ids else {})
    tasks.append(lambda: aws.call(log, "iam", "get_instance_profile",
                                  InstanceProfileName=profile_name) if profile_name else {})
    results = run_all(tasks)
    attributes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, result in zip(ATTRIBUTES, results, strict=False):
        if isinstance(result, AwsError):
            errors[f"attribute {name}"] = str(result)
        else:
            attributes[name] = _strip(result)
    console, screenshot, groups, profile = results[len(ATTRIBUTES):]
    collected = Collected(metadata=b"")
    if isinstance(console, AwsError):
        collected.unavailable["console output"] = str(console)
    else:
        collected.console_output = _decode_console(str(console.get("Output") or ""))
        if not console.get("Output"):
            collected.unavailable["console output"] = "AWS returned no output yet"
    if isinstance(screenshot, AwsError):
        collected.unavailable["console screenshot"] = f"not available ({screenshot})"
    elif screenshot:
        collected.screenshot = screenshot
    else:
        collected.unavailable["console screenshot"] = "not available (no image returned)"
    record = {
        "collected_at": collected_at.isoformat(),
        "account_id": owner,
        "region": aws.region,
        "instance": instance,
        "attributes": attributes,
        "security_groups": (_strip(groups).get("SecurityGroups", [])
                            if not isinstance(groups, AwsError) else str(groups)),
        "instance_profile": (_strip(profile).get("InstanceProfile", {})
                             if not isinstance(profile, AwsError) else str(profile)),
        "tags": {t["Key"]: t["Value"] for t in instance.get("Tags", [])},
        "errors": errors,
    }
    collected.metadata = json.dumps(record, indent=2, sort_keys=True, default=_plain).encode()
    return collected


def console_screenshot(aws: Aws, log: CallLog, instance_id: str) -> bytes:
    """Return the console screenshot (JPEG), or b"" when AWS returned no image."""
    response = aws.call(log, "ec2", "get_console_screenshot", InstanceId=instance_id,
                        WakeUp=True)
    data = str(response.get("ImageData") or "")
    return base64.b64decode(data) if data else b""


def _decode_console(output: str) -> bytes:
    """Console output comes base64-encoded from AWS (some emulators send it plain)."""
    try:
        return base64.b64decode(output, validate=True)
    except (binascii.Error, ValueError):
        return output.encode()
