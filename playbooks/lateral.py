"""The Lateral movement step: who else in the VPC the attacker could reach next."""

from __future__ import annotations

import json

from aws.lateral import neighbours
from playbooks.model import ActionButton, Artifact, Step, StepContext, StepOutcome

PERMISSIONS = ("ec2:DescribeInstances",)
MAX_BUTTONS = 20


def original_groups(ctx: StepContext) -> set[str]:
    """Return the instance's groups from before isolation, if Isolate recorded them."""
    run = ctx.facts.runs.get("isolate")
    groups: set[str] = set()
    for eni in run.result.get("interfaces", []) if run is not None else []:
        groups |= set(eni.get("groups_before", []))
    return groups


def talked_to(ctx: StepContext) -> dict[str, str]:
    """Return the destinations the Flow logs step saw, by IP, as "port/proto"."""
    run = ctx.facts.runs.get("flowlogs")
    peers: dict[str, str] = {}
    for row in run.result.get("rows", []) if run is not None else []:
        peers.setdefault(str(row.get("dstAddr", "")),
                         f"port {row.get('dstPort', '?')}, {row.get('flows', '?')} flows")
    return peers


def run_lateral(ctx: StepContext) -> StepOutcome:
    """List the VPC's running instances and what each shares with the compromised one."""
    vpc, found = neighbours(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id,
                            original_groups=original_groups(ctx) or None)
    if not vpc:
        return StepOutcome(ok=False, headline="The instance is not in a VPC")
    peers = talked_to(ctx)
    for n in found:
        if n.private_ip in peers:
            n.shares.insert(0, f"traffic from it ({peers[n.private_ip]})")
    found.sort(key=lambda n: (-len(n.shares), n.instance_id))
    suspicious = [n for n in found if n.suspicious]
    table = [["instance", "Name", "private IP", "role", "shares"]] + [
        [n.instance_id, n.name, n.private_ip, n.role or "—", ", ".join(n.shares) or "—"]
        for n in found]
    buttons = [ActionButton(label=f"Open incident {n.instance_id}", action="open-incident",
                            value=json.dumps({"instance": n.instance_id,
                                              "from": ctx.incident.id}))
               for n in suspicious[:MAX_BUTTONS]]
    lines = ["Look on these for the same indicators (processes, connections, cron, keys). "
             "Sharing a role, key pair or security group is a path an attacker can use."]
    if ctx.facts.runs.get("flowlogs") is None:
        lines.append("Run Flow logs first to see which of them it talked to.")
    if len(suspicious) > MAX_BUTTONS:
        lines.append(f"{len(suspicious) - MAX_BUTTONS} more suspicious instances are in the "
                     "table without a button: use /ir open.")
    full = "\n".join("\t".join(row) for row in table).encode()
    return StepOutcome(
        ok=True,
        artifacts=[Artifact("lateral-movement", f"{ctx.incident.instance_id}-neighbours.tsv",
                            full, f"Running instances in {vpc}")] if found else [],
        headline=(f"{len(found)} other running instances in {vpc}; "
                  f"{len(suspicious)} share a role, key pair or security group"),
        lines=lines, table=table if found else [], buttons=buttons,
        result={"vpc_id": vpc, "neighbours": [n.to_dict() for n in found]},
    )


LATERAL = Step(
    id="lateral",
    label="Check lateral movement",
    title="List the VPC's instances the attacker could reach",
    summary=("Lists every running instance in the VPC (paginated) with what it shares with "
             "the compromised one (role, security group, subnet, key pair), most first, each "
             "suspicious one with an Open incident button. Read-only."),
    running_text="Checking lateral movement…",
    run=run_lateral,
    permissions=PERMISSIONS,
)
