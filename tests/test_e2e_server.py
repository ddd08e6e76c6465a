"""End to end: `irbot serve` as a subprocess against moto's server and the fake Slack,
driven over signed HTTP the way Slack drives it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.ec2.responses.instances import InstanceResponse
from moto.server import ThreadedMotoServer

from aws.quarantine_groups import QUARANTINE_NAME
from tests.aws_world import World, build_world, group_by_name, interface_groups
from tests.fake_slack import FakeSlack
from tests.fake_socket_mode import FakeSocketMode
from tests.guardduty_events import TOKEN, ec2_event, post_finding
from tests.harness import ALICE, CHANNEL, SlackDriver, blocks_text, env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    httpx.post(f"{url}/moto-api/reset", timeout=30)  # moto's state is per process
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    yield url
    # Every user of moto resets it before use; a busy server here is not a failure.
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{url}/moto-api/reset", timeout=30)
    server.stop()


@pytest.fixture
def server_world(moto_server: str) -> World:
    make = lambda name: boto3.client(name, region_name="us-east-1")  # noqa: E731
    return build_world(make("ec2"), make("autoscaling"), make("elbv2"))


@contextlib.contextmanager
def running_irbot(fake_slack: FakeSlack, moto_url: str, tmp_path: Path,
                  *args: str, **extra_env: str) -> Iterator[str]:
    """Run `irbot serve` as a process until healthy; yield its base URL."""
    port = _free_port()
    irbot = shutil.which("irbot")
    cmd = [irbot] if irbot else [sys.executable, "-m", "bot.cli"]
    environment = {
        **os.environ,
        **env(fake_slack, f"sqlite:///{tmp_path}/irbot.db"),
        "AWS_ENDPOINT_URL": moto_url,
        "IRBOT_LOG_LEVEL": "warning",
        **extra_env,
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=environment, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "irbot serve did not become healthy"
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(20)  # it drains its intake for up to 10 s


@pytest.fixture
def served(moto_server: str, fake_slack: FakeSlack, tmp_path: Path
           ) -> Iterator[SlackDriver]:
    with running_irbot(fake_slack, moto_server, tmp_path) as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        yield SlackDriver(http=client, slack=fake_slack)


def test_open_and_isolate_through_the_running_server(served: SlackDriver, server_world: World
                                                     ) -> None:
    world = server_world
    response, name = served.command(f"open {world.instance_id} beaconing to a C2 domain")
    assert response.status_code == 200 and "Opening an incident" in response.text
    assert "Opened" in served.wait_reply(name, "Opened", timeout=30)
    ts, root = served.root()
    assert world.instance_id in blocks_text(root)

    response, _ = served.click("step:isolate", message_ts=ts)
    assert response.status_code == 200
    served.slack.wait_for(lambda: any(
        "isolated" in m.get("text", "") for m in served.slack.thread_messages(CHANNEL, ts)),
        timeout=30)

    ec2 = boto3.client("ec2", region_name="us-east-1")
    quarantine = group_by_name(ec2, world.vpc_id, QUARANTINE_NAME)
    assert quarantine["IpPermissions"] == [] and quarantine["IpPermissionsEgress"] == []
    for eni in world.eni_ids:
        assert interface_groups(ec2, eni) == [quarantine["GroupId"]]
    instance = ec2.describe_instances(InstanceIds=[world.instance_id])["Reservations"][0][
        "Instances"][0]
    assert instance["State"]["Name"] == "running"
    assert ec2.describe_instance_attribute(
        InstanceId=world.instance_id, Attribute="disableApiTermination"
    )["DisableApiTermination"]["Value"] is True
    asg = boto3.client("autoscaling", region_name="us-east-1")
    assert asg.describe_auto_scaling_instances(
        InstanceIds=[world.instance_id])["AutoScalingInstances"] == []
    final = served.slack.wait_for(lambda: "done by" in blocks_text(served.root()[1])
                                  and served.root()[1])
    assert f"<@{ALICE}>" in blocks_text(final)


def test_a_slow_aws_call_does_not_delay_the_ack(served: SlackDriver, server_world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    original = InstanceResponse.describe_instances

    def slow(self: Any) -> Any:
        time.sleep(5)
        return original(self)

    monkeypatch.setattr(InstanceResponse, "describe_instances", slow)
    started = time.monotonic()
    response, name = served.command(f"open {server_world.instance_id}")
    acked = time.monotonic() - started
    assert response.status_code == 200 and "Opening an incident" in response.text
    assert acked < 2.0, acked
    served.wait_reply(name, "Opened", timeout=30)
    assert time.monotonic() - started >= 5


def test_socket_mode_serves_the_same_app(moto_server: str, fake_slack: FakeSlack,
                                         server_world: World, tmp_path: Path) -> None:
    socket = FakeSocketMode().start()
    fake_slack.socket_url = socket.url
    try:
        with running_irbot(fake_slack, moto_server, tmp_path, "--socket",
                           SLACK_APP_TOKEN="xapp-1-A0IRBOT-1-test"):
            assert socket.connected.wait(15)
            payload = {
                "token": "legacy", "team_id": "T0TEAM", "channel_id": CHANNEL,
                "user_id": ALICE, "command": "/ir",
                "text": f"open {server_world.instance_id} via socket mode",
                "response_url": fake_slack.response_url("sock"), "trigger_id": "1.2.3",
                "api_app_id": "A0IRBOT",
            }
            socket.push({"envelope_id": "env-1", "type": "slash_commands",
                         "payload": payload, "accepts_response_payload": True})
            ack = socket.wait_ack("env-1")
            assert "Opening an incident" in json.dumps(ack)
            fake_slack.wait_for(lambda: any(
                c.method == "sock" and "Opened" in str(c.args.get("text"))
                for c in fake_slack.responses), timeout=30)
            (root,) = [c for c in fake_slack.calls_to("chat.postMessage")]
            assert server_world.instance_id in blocks_text(root.args)
    finally:
        socket.stop()


def test_evidence_capture_through_the_running_server(served: SlackDriver,
                                                     server_world: World) -> None:
    """Against moto's server the screenshot API answers with a page botocore cannot parse:
    it must be reported as not available, and the rest still captured."""
    _response, name = served.command(f"open {server_world.instance_id} evidence first")
    served.wait_reply(name, "Opened", timeout=30)
    ts, _root = served.root()
    served.click("step:evidence", message_ts=ts)
    (result,) = served.slack.wait_for(lambda: [
        m for m in served.slack.thread_messages(CHANNEL, ts)
        if "Evidence captured" in m.get("text", "")], timeout=60)
    text = blocks_text(result)
    assert "console screenshot: not available" in text
    def files() -> list[dict[str, Any]]:
        return [f for f in served.slack.files.values() if f.get("thread_ts") == ts]

    uploaded = served.slack.wait_for(lambda: len(files()) >= 2 and files())
    assert {f["filename"].rsplit("-", 2)[1] for f in uploaded} >= {"metadata", "console"}


def test_a_finding_from_another_account_through_the_running_server(
        moto_server: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    """A finding posted as EventBridge posts it opens a usable thread, and Isolate acts in
    the finding's account through the role IRBOT_ACCOUNT_ROLES names."""
    other = "222233334444"
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{other}:role/setup", RoleSessionName="setup")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name="us-east-1")
    remote = build_world(session.client("ec2"), session.client("autoscaling"),
                         session.client("elbv2"), name="payroll")
    with running_irbot(fake_slack, moto_server, tmp_path, IRBOT_INTAKE_TOKEN=TOKEN,
                       IRBOT_ACCOUNT_ROLES=f"{other}=arn:aws:iam::{other}:role/irbot") as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        driver = SlackDriver(http=client, slack=fake_slack)
        started = time.monotonic()
        response = post_finding(client, ec2_event(remote.instance_id, account=other))
        assert response.status_code == 202 and time.monotonic() - started < 1.0
        ts, root = driver.wait_root(timeout=30)
        assert f"{other} / us-east-1" in blocks_text(root)
        driver.click("step:isolate", message_ts=ts)
        fake_slack.wait_for(lambda: any(
            "isolated" in m.get("text", "") for m in fake_slack.thread_messages(CHANNEL, ts)),
            timeout=30)
    ec2 = session.client("ec2")
    quarantine = group_by_name(ec2, remote.vpc_id, QUARANTINE_NAME)
    for eni in remote.eni_ids:
        assert interface_groups(ec2, eni) == [quarantine["GroupId"]]


def test_stopping_the_server_finishes_the_findings_it_took(
        moto_server: str, fake_slack: FakeSlack, server_world: World, tmp_path: Path) -> None:
    """SIGTERM right after the 202s: the findings already taken still get their thread and
    every digest, though a rate-limited Slack holds the later ones back past the signal."""
    fake_slack.throttles = {"chat.postMessage": (1, 1.0)}
    with running_irbot(fake_slack, moto_server, tmp_path, IRBOT_INTAKE_TOKEN=TOKEN) as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        for n in range(3):
            response = post_finding(client, ec2_event(server_world.instance_id,
                                                      finding_id=f"late-{n}"))
            assert response.status_code == 202
    # running_irbot has sent SIGTERM and waited for the process to exit.
    roots = [c for c in fake_slack.calls_to("chat.postMessage")
             if not c.args.get("thread_ts")]
    assert len(roots) == 1 and server_world.instance_id in blocks_text(roots[0].args)
    told = 0
    for call in fake_slack.calls_to("chat.postMessage"):
        if call.args.get("thread_ts"):
            found = re.match(r":mag: (\d+) new GuardDuty findings", str(call.args["text"]))
            told += int(found.group(1)) if found else 1
    assert told == 3
