"""Volatile triage over SSM, with botocore's Stubber feeding realistic SSM answers (moto
returns empty output and lacks describe_instance_information)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from aws.session import AwsFactory, CallLog
from aws.ssm import SSM_OUTPUT_LIMIT, TRIAGE_COMMANDS, triage_script
from playbooks.investigate import not_after_isolation, run_investigate
from playbooks.model import Facts, StepContext
from storage.models import Incident, StepRun

IID = "i-0123456789abcdef0"
CMD1 = "11111111-2222-3333-4444-555555555551"
CMD2 = CMD1[:-1] + "2"
CMD3 = CMD1[:-1] + "3"
OUTPUT = """### netstat -tlnp
### ss -tlnp
State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*     users:(("sshd",pid=812,fd=3))
LISTEN 0      511          0.0.0.0:8080      0.0.0.0:*     users:(("kdevtmpfsi",pid=4242,fd=5))
### ps auxf
root       812  0.0  0.1  15852  6900 ?  Ss   10:00   0:00 /usr/sbin/sshd -D
www-data  4242 98.0  2.0 500000 80000 ?  Sl   11:02 120:00 /tmp/.x/kdevtmpfsi
www-data  4300  0.0  0.0   2616   600 ?  S    11:05   0:00 bash -i
### last -n 20
"""


def _ctx(stub_client: Any, **config: str) -> StepContext:
    aws = AwsFactory(default_region="us-east-1").for_region("us-east-1")
    aws.set_client("ssm", stub_client)
    incident = Incident(id="IR-2026-0001", instance_id=IID, account_id="123456789012",
                        region="us-east-1", vpc_id="vpc-1", status="open",
                        opened_by="U0ALICE", reason="", instance={})
    return StepContext(incident=incident, aws=aws, log=CallLog(), actor="U0ALICE",
                       config={"ssm_poll_seconds": "0", **config})


def _client() -> tuple[Any, Stubber]:
    client = boto3.client("ssm", region_name="us-east-1")
    return client, Stubber(client)


def _managed(stub: Stubber, ping: str = "Online") -> None:
    stub.add_response("describe_instance_information",
                      {"InstanceInformationList": [{"InstanceId": IID, "PingStatus": ping}]},
                      {"Filters": [{"Key": "InstanceIds", "Values": [IID]}]})


def test_triage_runs_the_fixed_commands_and_summarises(aws_env: None) -> None:
    client, stub = _client()
    _managed(stub)
    stub.add_response("send_command", {"Command": {"CommandId": CMD1}}, {
        "InstanceIds": [IID], "DocumentName": "AWS-RunShellScript", "Comment": ANY,
        "TimeoutSeconds": ANY, "Parameters": {"commands": triage_script()}})
    stub.add_client_error("get_command_invocation", service_error_code="InvocationDoesNotExist")
    stub.add_response("get_command_invocation", {"Status": "InProgress"},
                      {"CommandId": CMD1, "InstanceId": IID})
    stub.add_response("get_command_invocation", {
        "Status": "Success", "StandardOutputContent": OUTPUT, "StandardErrorContent": ""},
        {"CommandId": CMD1, "InstanceId": IID})
    with stub:
        outcome = run_investigate(_ctx(client))
    stub.assert_no_pending_responses()
    assert outcome.ok
    assert outcome.result["ports"] == ["0.0.0.0:22 sshd", "0.0.0.0:8080 kdevtmpfsi"]
    assert any("kdevtmpfsi" in p for p in outcome.result["unusual_processes"])
    assert any("bash -i" in p for p in outcome.result["unusual_processes"])
    (artifact,) = outcome.artifacts
    assert artifact.kind == "triage-output" and artifact.content.decode() == OUTPUT
    for seed in ("netstat -tlnp", "ss -tlnp", "cat /etc/crontab", "ls -la /tmp"):
        assert seed in TRIAGE_COMMANDS


def test_truncated_output_is_said(aws_env: None) -> None:
    client, stub = _client()
    _managed(stub)
    stub.add_response("send_command", {"Command": {"CommandId": CMD2}})
    stub.add_response("get_command_invocation", {
        "Status": "Success", "StandardOutputContent": "x" * SSM_OUTPUT_LIMIT})
    with stub:
        outcome = run_investigate(_ctx(client))
    assert outcome.result["truncated"]
    assert any("cut the output at 24,000" in line for line in outcome.lines)


def test_unmanaged_and_offline_instances_are_told_plainly(aws_env: None) -> None:
    client, stub = _client()
    stub.add_response("describe_instance_information", {"InstanceInformationList": []})
    _managed(stub, ping="ConnectionLost")
    with stub:
        unmanaged = run_investigate(_ctx(client))
        offline = run_investigate(_ctx(client))
    assert not unmanaged.ok and "not managed by SSM" in unmanaged.headline
    assert not offline.ok and "ConnectionLost" in offline.headline


def test_a_command_that_never_finishes_hits_the_deadline(aws_env: None) -> None:
    client, stub = _client()
    _managed(stub)
    stub.add_response("send_command", {"Command": {"CommandId": CMD3}})
    for _ in range(3):
        stub.add_response("get_command_invocation", {"Status": "InProgress"})
    with stub:
        outcome = run_investigate(_ctx(client, ssm_wait_seconds="0"))
    assert not outcome.ok and "did not finish" in outcome.headline


def test_triage_is_refused_once_isolated() -> None:
    isolated = Facts(runs={"isolate": StepRun(step_id="isolate", state="succeeded")},
                     evidence_kinds=frozenset())
    missing = not_after_isolation(_ctx_plain(), isolated)
    assert missing and "SSM agent cannot reach SSM" in missing[0]
    assert not_after_isolation(_ctx_plain(), Facts(runs={}, evidence_kinds=frozenset())) == []


def _ctx_plain() -> StepContext:
    return _ctx(boto3.client("ssm", region_name="us-east-1"))
