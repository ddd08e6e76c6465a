"""Flow logs: found with moto, queried with botocore's Stubber (moto's Logs Insights ignores
the filter), and the no-flow-logs path through the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from aws.flowlogs import accepted_outbound_query
from aws.session import AwsFactory, CallLog
from playbooks.flowlogs import check_params, run_flowlogs
from playbooks.model import Facts, StepContext
from storage.models import Incident, StepRun
from tests.aws_world import World
from tests.conftest import open_incident
from tests.harness import CHANNEL, SlackDriver, blocks_text

QUERY_ID = "12345678-1234-1234-1234-123456789012"


def _incident(world: World, clients: dict[str, Any]) -> Incident:
    described = clients["ec2"].describe_instances(InstanceIds=[world.instance_id])[
        "Reservations"][0]["Instances"][0]
    interfaces = [{"interface_id": e["NetworkInterfaceId"], "subnet_id": e["SubnetId"]}
                  for e in described["NetworkInterfaces"]]
    ips = [e["PrivateIpAddress"] for e in described["NetworkInterfaces"]]
    return Incident(id="IR-2026-0001", instance_id=world.instance_id,
                    account_id="123456789012", region="us-east-1", vpc_id=world.vpc_id,
                    status="open", opened_by="U0ALICE", reason="",
                    instance={"interfaces": interfaces, "private_ips": ips})


def _flow_log(clients: dict[str, Any], world: World) -> None:
    clients["ec2"].create_flow_logs(
        ResourceType="VPC", ResourceIds=[world.vpc_id], TrafficType="ALL",
        LogDestinationType="cloud-watch-logs", LogGroupName="/vpc/flow-logs",
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/vpc-flow-logs")


def _ctx(incident: Incident, logs_client: Any, **params: str) -> StepContext:
    aws = AwsFactory(default_region="us-east-1").for_region()
    aws.set_client("logs", logs_client)
    isolated = StepRun(step_id="isolate", state="succeeded",
                       finished_at=datetime.now(UTC) - timedelta(minutes=5))
    return StepContext(incident=incident, aws=aws, log=CallLog(), actor="U0ALICE",
                       config={"logs_poll_seconds": "0"}, params=params,
                       facts=Facts(runs={"isolate": isolated}, evidence_kinds=frozenset()))


ROW = [{"field": "dstAddr", "value": "203.0.113.9"}, {"field": "dstPort", "value": "4444"},
       {"field": "protocol", "value": "6"}, {"field": "flows", "value": "12"},
       {"field": "packets", "value": "340"}, {"field": "bytes", "value": "918230"},
       {"field": "first_seen", "value": "2026-12-03 10:00:01.000"},
       {"field": "last_seen", "value": "2026-12-03 16:59:58.000"}]


def test_top_destinations_over_the_window(clients: dict[str, Any], world: World) -> None:
    _flow_log(clients, world)
    incident = _incident(world, clients)
    logs = boto3.client("logs", region_name="us-east-1")
    stub = Stubber(logs)
    stub.add_response("start_query", {"queryId": QUERY_ID}, {
        "logGroupNames": ["/vpc/flow-logs"], "startTime": ANY, "endTime": ANY,
        "queryString": accepted_outbound_query(incident.instance["private_ips"])})
    stub.add_response("get_query_results", {"status": "Running", "results": []})
    stub.add_response("get_query_results", {"status": "Complete", "results": [ROW]})
    with stub:
        outcome = run_flowlogs(_ctx(incident, logs, hours="6"))
    assert outcome.ok and "last 6 h: 1 destinations" in outcome.headline
    assert outcome.table[1][:3] == ["203.0.113.9", "4444", "6"]
    assert [b.label for b in outcome.buttons] == ["Verify isolation"]
    assert outcome.choice is not None
    assert ("Last 7 days", {"hours": "168"}) in outcome.choice.options
    assert outcome.artifacts[0].kind == "flow-log-query"


def test_verify_isolation_flags_traffic_since(clients: dict[str, Any], world: World) -> None:
    _flow_log(clients, world)
    incident = _incident(world, clients)
    logs = boto3.client("logs", region_name="us-east-1")
    stub = Stubber(logs)
    for results in ([], [ROW]):
        stub.add_response("start_query", {"queryId": QUERY_ID})
        stub.add_response("get_query_results", {"status": "Complete", "results": results})
    with stub:
        clean = run_flowlogs(_ctx(incident, logs, since_isolation="1"))
        leaking = run_flowlogs(_ctx(incident, logs, since_isolation="1"))
    assert clean.ok and clean.headline.startswith("Isolation holds")
    assert not leaking.ok and "TRAFFIC WAS ACCEPTED SINCE ISOLATION" in leaking.headline


def test_query_takes_only_ip_addresses() -> None:
    assert '"10.0.0.5"' in accepted_outbound_query(["10.0.0.5"])
    with pytest.raises(ValueError):
        accepted_outbound_query(['10.0.0.5"] | display @message #'])
    with pytest.raises(ValueError):
        check_params({"hours": "3"})
    assert check_params({"hours": "168"}) == {"hours": "168"}


def test_no_flow_logs_says_how_to_enable_them(driver: SlackDriver, world: World) -> None:
    ts, _root = open_incident(driver, world)
    driver.click("step:flowlogs", message_ts=ts)
    (result,) = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "No flow logs" in m["text"]])
    assert "aws ec2 create-flow-logs" in blocks_text(result) and world.vpc_id in blocks_text(
        result)
    # A read-only query may run again once done.
    root = driver.slack.wait_for(lambda: "step:flowlogs" in blocks_text(driver.root()[1])
                                 and "done by" in blocks_text(driver.root()[1]))
    assert root
