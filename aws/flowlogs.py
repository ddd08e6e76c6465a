"""VPC flow logs: which logs cover an instance, and what it sent where (Logs Insights)."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws.session import Aws, CallLog

DONE = {"Complete", "Failed", "Cancelled", "Timeout", "Unknown"}


@dataclass(frozen=True)
class FlowLog:
    flow_log_id: str
    resource_id: str
    destination_type: str
    log_group: str
    status: str
    traffic_type: str


def flow_logs_for(aws: Aws, log: CallLog, resource_ids: list[str]) -> list[FlowLog]:
    """Return the flow logs on any of the resources (interfaces, subnets, VPC)."""
    found = aws.paginate(log, "ec2", "describe_flow_logs", "FlowLogs",
                         Filters=[{"Name": "resource-id", "Values": resource_ids}])
    return [FlowLog(flow_log_id=f["FlowLogId"], resource_id=str(f.get("ResourceId", "")),
                    destination_type=str(f.get("LogDestinationType", "cloud-watch-logs")),
                    log_group=str(f.get("LogGroupName", "")),
                    status=str(f.get("FlowLogStatus", "")),
                    traffic_type=str(f.get("TrafficType", ""))) for f in found]


def accepted_outbound_query(private_ips: list[str], *, limit: int = 25) -> str:
    """Return the Logs Insights query for accepted traffic from the instance's addresses.

    The addresses come from AWS and are checked to be IP addresses before they are put
    into the query; nothing from Slack ever is.
    """
    addresses = [str(ipaddress.ip_address(ip)) for ip in private_ips]
    quoted = ", ".join(f'"{ip}"' for ip in addresses)
    return (
        "fields @timestamp, srcAddr, dstAddr, dstPort, protocol, packets, bytes, action\n"
        f"| filter srcAddr in [{quoted}] and action = \"ACCEPT\"\n"
        "| stats count(*) as flows, sum(packets) as packets, sum(bytes) as bytes, "
        "min(@timestamp) as first_seen, max(@timestamp) as last_seen "
        "by dstAddr, dstPort, protocol\n"
        "| sort bytes desc\n"
        f"| limit {int(limit)}"
    )


@dataclass
class QueryResult:
    status: str
    rows: list[dict[str, str]] = field(default_factory=list)
    query_id: str = ""
    scanned_bytes: float = 0.0


def run_query(aws: Aws, log: CallLog, *, log_groups: list[str], query: str, start: datetime,
              end: datetime, wait_seconds: float = 60.0,
              poll_seconds: float = 1.0) -> QueryResult:
    """Run a Logs Insights query and wait for its rows until the deadline."""
    started = aws.call(log, "logs", "start_query", logGroupNames=log_groups,
                       startTime=int(start.timestamp()), endTime=int(end.timestamp()),
                       queryString=query)
    query_id = str(started["queryId"])
    deadline = time.monotonic() + wait_seconds
    while True:
        got: dict[str, Any] = aws.call(log, "logs", "get_query_results", queryId=query_id)
        status = str(got.get("status", ""))
        if status in DONE or time.monotonic() > deadline:
            rows = [{c["field"]: str(c.get("value", "")) for c in row if "field" in c}
                    for row in got.get("results", [])]
            return QueryResult(status=status if status in DONE else f"{status} (gave up)",
                               rows=rows, query_id=query_id,
                               scanned_bytes=float(got.get("statistics", {}).get(
                                   "bytesScanned", 0.0)))
        time.sleep(poll_seconds)
