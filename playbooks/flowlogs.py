"""The Flow logs step: where the instance sent traffic, and whether any got out since
isolation ("Verify isolation")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from aws.flowlogs import accepted_outbound_query, flow_logs_for, run_query
from playbooks.model import (
    ActionButton,
    Artifact,
    Step,
    StepChoice,
    StepContext,
    StepOutcome,
)
from storage.approvals import aware
from storage.models import StepState, utcnow

PERMISSIONS = ("ec2:DescribeFlowLogs", "logs:StartQuery", "logs:GetQueryResults")
WINDOWS = {"1": "1 h", "6": "6 h", "24": "24 h", "168": "7 days"}


def check_params(params: Mapping[str, str]) -> dict[str, str]:
    """Accept a window in hours (1, 6, 24, 168) or since_isolation=1."""
    clean: dict[str, str] = {}
    for key, value in params.items():
        if key == "hours" and value in WINDOWS:
            clean["hours"] = value
        elif key == "since_isolation" and value == "1":
            clean["since_isolation"] = "1"
        else:
            raise ValueError(f"unknown option {key}={value[:20]!r}")
    return clean


def how_to_enable(vpc_id: str, account_id: str) -> list[str]:
    """Return how to turn flow logs on for the VPC."""
    return [
        f"No flow logs cover this instance, its subnet or {vpc_id}. To enable them:",
        f"aws ec2 create-flow-logs --resource-type VPC --resource-ids {vpc_id} "
        "--traffic-type ALL --log-destination-type cloud-watch-logs "
        "--log-group-name /vpc/flow-logs --deliver-logs-permission-arn "
        f"arn:aws:iam::{account_id}:role/vpc-flow-logs",
        "They only record traffic from then on: past traffic cannot be recovered.",
    ]


def run_flowlogs(ctx: StepContext) -> StepOutcome:
    """Query the flow logs for accepted traffic from the instance's private addresses."""
    inst = ctx.incident.instance
    vpc = ctx.incident.vpc_id or ""
    enis = [i["interface_id"] for i in inst.get("interfaces", [])]
    subnets = sorted({i["subnet_id"] for i in inst.get("interfaces", []) if i.get("subnet_id")})
    logs = [f for f in flow_logs_for(ctx.aws, ctx.log, [*enis, *subnets, vpc])
            if f.destination_type == "cloud-watch-logs" and f.log_group]
    if not logs:
        return StepOutcome(ok=True, headline="No flow logs in CloudWatch Logs cover "
                           f"{ctx.incident.instance_id}", lines=how_to_enable(
                               vpc, ctx.incident.account_id), result={"flow_logs": []})
    end = utcnow()
    since_isolation = ctx.params.get("since_isolation") == "1"
    isolate = ctx.facts.runs.get("isolate")
    if since_isolation:
        if isolate is None or isolate.state != StepState.SUCCEEDED.value or \
                isolate.finished_at is None:
            return StepOutcome(ok=False, headline="Verify isolation needs a completed Isolate")
        start = aware(isolate.finished_at)
        window = f"since isolation at {start:%Y-%m-%d %H:%M:%S} UTC"
    else:
        hours = int(ctx.params.get("hours", "24"))
        start = end - timedelta(hours=hours)
        window = f"last {WINDOWS[str(hours)]}"
    query = accepted_outbound_query(inst.get("private_ips", []))
    groups = sorted({f.log_group for f in logs})
    result = run_query(ctx.aws, ctx.log, log_groups=groups, query=query, start=start, end=end,
                       wait_seconds=float(ctx.config.get("logs_wait_seconds", "60")),
                       poll_seconds=float(ctx.config.get("logs_poll_seconds", "1")))
    table = [["destination", "port", "proto", "flows", "packets", "bytes", "first seen",
              "last seen"]] + [
        [r.get("dstAddr", ""), r.get("dstPort", ""), r.get("protocol", ""), r.get("flows", ""),
         r.get("packets", ""), r.get("bytes", ""), r.get("first_seen", ""),
         r.get("last_seen", "")] for r in result.rows]
    if since_isolation:
        headline = ("Isolation holds: no accepted traffic from the instance " + window
                    if not result.rows else
                    f"TRAFFIC WAS ACCEPTED {window.upper()}: {len(result.rows)} destinations")
        ok = not result.rows and result.status == "Complete"
    else:
        headline = f"Accepted outbound traffic, {window}: {len(result.rows)} destinations"
        ok = result.status == "Complete"
    lines = [f"Flow logs: {', '.join(f'{f.flow_log_id} on {f.resource_id}' for f in logs)}",
             f"Query {result.query_id}: {result.status}"]
    choice = StepChoice(placeholder="Another window…", step_id="flowlogs",
                        options=[(f"Last {label}", {"hours": hours})
                                 for hours, label in WINDOWS.items()])
    buttons = []
    if isolate is not None and isolate.state == StepState.SUCCEEDED.value:
        buttons.append(ActionButton(label="Verify isolation", action="", value="",
                                    step_id="flowlogs", params={"since_isolation": "1"}))
    artifact = Artifact("flow-log-query", f"{ctx.incident.instance_id}-flows-"
                        f"{end:%Y%m%dT%H%M%SZ}.tsv",
                        ("\n".join("\t".join(r) for r in table) + f"\n# {query}\n").encode(),
                        f"Flow log query ({window})")
    return StepOutcome(ok=ok, headline=headline, lines=lines, table=table if result.rows else [],
                       buttons=buttons, choice=choice, artifacts=[artifact],
                       result={"window": window, "rows": result.rows, "status": result.status,
                               "flow_logs": [f.flow_log_id for f in logs]})


FLOWLOGS = Step(
    id="flowlogs",
    label="Flow logs",
    title="Where did it send traffic (VPC flow logs)",
    summary=("Finds the flow logs covering the instance's interfaces, subnet or VPC, runs a "
             "Logs Insights query for accepted traffic from its private IPs (24 h by "
             "default; 1 h, 6 h and 7 days on the result) and posts the top destinations. "
             "After Isolate, Verify isolation shows whether anything was accepted since."),
    running_text="Querying flow logs…",
    run=run_flowlogs,
    permissions=PERMISSIONS,
    repeatable=True,
    check_params=check_params,
)
