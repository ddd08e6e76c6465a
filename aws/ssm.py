"""Volatile triage over SSM: a fixed list of read-only commands, never anything from Slack."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aws.errors import AwsError
from aws.session import Aws, CallLog

# The seed playbook's commands first, then the rest of a first look at a live host. Each
# runs with its own header so the output can be read (and parsed) section by section.
TRIAGE_COMMANDS: tuple[str, ...] = (
    "netstat -tlnp",
    "ss -tlnp",
    "cat /etc/crontab",
    "ls -la /tmp",
    "ss -tunap",
    "ps auxf",
    "for u in $(cut -f1 -d: /etc/passwd); do crontab -l -u \"$u\" 2>/dev/null "
    "| sed \"s/^/$u: /\"; done",
    "ls -la /etc/cron*",
    "ls -la /var/tmp /dev/shm",
    "last -n 20",
)
SSM_OUTPUT_LIMIT = 24000  # get_command_invocation returns at most this much stdout
DONE = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"}


def triage_script() -> list[str]:
    """Return the shell lines sent to AWS-RunShellScript."""
    lines = []
    for command in TRIAGE_COMMANDS:
        header = command.replace("'", "")
        lines.append(f"echo '### {header}'")
        lines.append(f"{command} 2>&1 || true")
    return lines


@dataclass(frozen=True)
class Triage:
    managed: bool
    ping: str = ""
    command_id: str = ""
    status: str = ""
    output: str = ""
    errors: str = ""
    truncated: bool = False
    detail: str = ""


def managed_status(aws: Aws, log: CallLog, instance_id: str) -> str:
    """Return the SSM agent's ping status ("Online", "ConnectionLost", ...) or "" if unmanaged."""
    response = aws.call(log, "ssm", "describe_instance_information",
                        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
    for info in response.get("InstanceInformationList", []):
        if info.get("InstanceId") == instance_id:
            return str(info.get("PingStatus", "Unknown"))
    return ""


def run_triage(aws: Aws, log: CallLog, *, instance_id: str, comment: str,
               wait_seconds: float = 120.0, poll_seconds: float = 2.0) -> Triage:
    """Run the triage script and wait for its output until the deadline."""
    ping = managed_status(aws, log, instance_id)
    if not ping:
        return Triage(managed=False)
    if ping != "Online":
        return Triage(managed=True, ping=ping,
                      detail=f"the SSM agent is {ping}: it cannot take commands now")
    sent = aws.call(log, "ssm", "send_command", InstanceIds=[instance_id],
                    DocumentName="AWS-RunShellScript", Comment=comment[:100],
                    TimeoutSeconds=int(max(30, wait_seconds)),
                    Parameters={"commands": triage_script()})
    command_id = str(sent["Command"]["CommandId"])
    deadline = time.monotonic() + wait_seconds
    status = "Pending"
    while True:
        try:
            got = aws.call(log, "ssm", "get_command_invocation", CommandId=command_id,
                           InstanceId=instance_id)
            status = str(got.get("Status", ""))
            if status in DONE:
                output = str(got.get("StandardOutputContent", ""))
                return Triage(managed=True, ping=ping, command_id=command_id, status=status,
                              output=output, errors=str(got.get("StandardErrorContent", "")),
                              truncated=len(output) >= SSM_OUTPUT_LIMIT)
        except AwsError as exc:
            if exc.code != "InvocationDoesNotExist":  # not registered yet: keep waiting
                raise
        if time.monotonic() > deadline:
            return Triage(managed=True, ping=ping, command_id=command_id, status=status,
                          detail=f"no result within {wait_seconds:.0f} s (still {status})")
        time.sleep(poll_seconds)
