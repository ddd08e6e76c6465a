"""The Investigate step: volatile triage over SSM, before isolation cuts the agent off."""

from __future__ import annotations

import re

from aws.ssm import SSM_OUTPUT_LIMIT, TRIAGE_COMMANDS, run_triage
from playbooks.model import Artifact, Facts, Step, StepContext, StepOutcome
from storage.models import StepState, utcnow

PERMISSIONS = ("ssm:DescribeInstanceInformation", "ssm:SendCommand",
               "ssm:GetCommandInvocation")

# Names and places that deserve a second look in a process list.
_SUSPECT = re.compile(
    r"(/tmp/|/var/tmp/|/dev/shm/|\(deleted\)|xmrig|kinsing|kdevtmpfsi|minerd|cryptonight|"
    r"\bnc(at)? .*-e\b|socat |bash -i|/dev/tcp/|perl -e|python[0-9.]* -c)")
_LISTEN = re.compile(r"^(?:tcp\S*\s+)?LISTEN\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s*(.*)$")


def sections(output: str) -> dict[str, str]:
    """Split the triage output into its commands' sections."""
    found: dict[str, str] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def listening_ports(ss_output: str) -> list[str]:
    """Return "address:port process" for each listening socket in `ss -tlnp` output."""
    ports = []
    for line in ss_output.splitlines():
        match = _LISTEN.match(line.strip())
        if match:
            process = re.search(r'users:\(\("([^"]+)"', match.group(3))
            ports.append(f"{match.group(1)}:{match.group(2)} "
                         f"{process.group(1) if process else ''}".strip())
    return ports


def unusual_processes(ps_output: str) -> list[str]:
    """Return the process lines that match a known bad sign."""
    return [line.strip()[:200] for line in ps_output.splitlines() if _SUSPECT.search(line)]


def not_after_isolation(ctx: StepContext, facts: Facts) -> list[str]:
    """Triage cannot run once the instance is isolated: the agent has no way out."""
    isolate = facts.runs.get("isolate")
    if isolate is not None and isolate.state in (StepState.SUCCEEDED.value,
                                                 StepState.RUNNING.value):
        return ["an instance that is not isolated: after Isolate the SSM agent cannot reach "
                "SSM, so volatile triage can no longer run. Use the snapshots for offline "
                "forensics instead"]
    return []


def run_investigate(ctx: StepContext) -> StepOutcome:
    """Run the fixed triage commands over SSM and summarise what they show."""
    iid = ctx.incident.instance_id
    triage = run_triage(ctx.aws, ctx.log, instance_id=iid, comment=f"irbot {ctx.incident.id}",
                        wait_seconds=float(ctx.config.get("ssm_wait_seconds", "120")),
                        poll_seconds=float(ctx.config.get("ssm_poll_seconds", "2")))
    if not triage.managed:
        return StepOutcome(ok=False, headline=f"{iid} is not managed by SSM: triage cannot run",
                           lines=["SSM needs the agent running on the instance, an instance "
                                  "profile with AmazonSSMManagedInstanceCore, and a route to "
                                  "SSM (internet or VPC endpoints).",
                                  "Without it, rely on the snapshots and flow logs."])
    if triage.detail and not triage.output:
        return StepOutcome(ok=False, headline=f"Triage of {iid} did not finish: {triage.detail}",
                           result={"command_id": triage.command_id, "status": triage.status})
    parts = sections(triage.output)
    ports = listening_ports(parts.get("ss -tlnp", ""))
    suspects = unusual_processes(parts.get("ps auxf", ""))
    lines = ["Listening: " + (", ".join(ports[:30]) or "nothing found in ss -tlnp output")]
    lines += [f"Unusual process: {p}" for p in suspects[:20]] or ["No process matched the "
                                                                  "usual bad signs"]
    if triage.truncated:
        lines.append(f"SSM cut the output at {SSM_OUTPUT_LIMIT:,} characters: the attached file "
                     "is incomplete (later sections may be missing).")
    if triage.status != "Success":
        lines.append(f"The command ended {triage.status}: {triage.errors[:300]}")
    stamp = f"{utcnow():%Y%m%dT%H%M%SZ}"
    content = triage.output + ("\n### stderr\n" + triage.errors if triage.errors else "")
    artifact = Artifact("triage-output", f"{iid}-triage-{stamp}.txt", content.encode(),
                        f"Volatile triage of {iid}")
    return StepOutcome(
        ok=triage.status == "Success",
        headline=(f"Triage of {iid}: {len(ports)} listening sockets, "
                  f"{len(suspects)} unusual processes"),
        lines=lines, artifacts=[artifact],
        result={"command_id": triage.command_id, "status": triage.status, "ports": ports,
                "unusual_processes": suspects, "truncated": triage.truncated,
                "commands": list(TRIAGE_COMMANDS)},
    )


INVESTIGATE = Step(
    id="investigate",
    label="Investigate (triage)",
    title="Volatile triage over SSM, before isolating",
    summary=("Runs a fixed list of read-only commands with AWS-RunShellScript (listening "
             "sockets, connections, processes, cron, /tmp, /var/tmp, /dev/shm, last logins), "
             "keeps the output as evidence and summarises ports and unusual processes. Only "
             "before isolation: afterwards SSM cannot reach the agent."),
    running_text="Running triage…",
    run=run_investigate,
    permissions=PERMISSIONS,
    missing=not_after_isolation,
)
