"""Acting in the finding's account: a role per account, a clear message when there is none,
and `/ir open --account --region`."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.sts.models import sts_backends

from bot.deps import Deps
from handlers.parsing import BadInput, Open, parse_command
from tests.aws_world import World, build_world, interface_groups
from tests.guardduty_events import TOKEN, ec2_event, post_finding
from tests.harness import ALICE, CHANNEL, SlackDriver, blocks_text

OTHER = "222233334444"
NO_ROLE = "555566667777"
OTHER_ROLE = f"arn:aws:iam::{OTHER}:role/irbot-responder"


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    return {"IRBOT_INTAKE_TOKEN": TOKEN, "IRBOT_ACCOUNT_ROLES": f"{OTHER}={OTHER_ROLE}"}


def _other_account(region: str = "us-east-1") -> dict[str, Any]:
    """Return clients acting inside the second account (moto keeps accounts apart)."""
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{OTHER}:role/setup", RoleSessionName="test-setup")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=region)
    return {name: session.client(name) for name in ("ec2", "autoscaling", "elbv2")}


def test_a_finding_from_a_second_account_is_acted_on_through_its_role(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    other = _other_account()
    remote = build_world(other["ec2"], other["autoscaling"], other["elbv2"], name="payroll")
    # The instance is not in the bot's own account.
    with pytest.raises(Exception, match="InvalidInstanceID"):
        boto3.client("ec2").describe_instances(InstanceIds=[remote.instance_id])
    assert post_finding(driver.http, ec2_event(remote.instance_id,
                                                account=OTHER)).status_code == 202
    ts, root = driver.wait_root()
    assert f"{OTHER} / us-east-1" in blocks_text(root) and "payroll" in blocks_text(root)
    (incident,) = deps.engine.open_incidents()
    assert incident.account_id == OTHER

    driver.click("step:isolate", message_ts=ts, user=ALICE)
    driver.slack.wait_for(lambda: any("is isolated" in m.get("text", "")
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))
    # Read AWS back, in the second account: every interface is quarantined there.
    for eni in remote.eni_ids:
        (group,) = interface_groups(other["ec2"], eni)
        name = other["ec2"].describe_security_groups(GroupIds=[group])[
            "SecurityGroups"][0]["GroupName"]
        assert name == "irbot-quarantine"
    assert interface_groups(boto3.client("ec2"), world.eni_ids[0]) == [world.web_sg]
    sessions = [r.session_name for r in sts_backends[OTHER]["aws"].assumed_roles] + [
        r.session_name for r in sts_backends["123456789012"]["aws"].assumed_roles]
    assert f"irbot-{incident.id}-{ALICE}" in sessions


def test_an_account_without_a_role_gets_a_thread_saying_what_to_configure(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    event = ec2_event("i-0123456789abcdef0", account=NO_ROLE)
    assert post_finding(driver.http, event).status_code == 202
    ts, root = driver.wait_root()
    assert f"{NO_ROLE} / us-east-1" in blocks_text(root)
    (message,) = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "no role" in m["text"]])
    text = message["text"]
    assert f"{NO_ROLE}=arn:aws:iam::{NO_ROLE}:role/irbot-responder" in text
    assert "IRBOT_ACCOUNT_ROLES" in text and "iam-policy.json" in text
    assert "sts:AssumeRole" in text

    driver.click("step:isolate", message_ts=ts, user=ALICE)
    failed = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "Isolate failed" in m["text"]])
    assert "IRBOT_ACCOUNT_ROLES" in failed[0]["text"]


def test_open_takes_account_and_region(driver: SlackDriver, deps: Deps, world: World) -> None:
    other = _other_account("eu-west-1")
    ec2 = other["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    instance_id = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                    SubnetId=subnet)["Instances"][0]["InstanceId"]
    response, name = driver.command(f"open {instance_id} --account {OTHER} "
                                    "--region eu-west-1 miner")
    assert response.status_code == 200
    driver.wait_reply(name, "Opened")
    (incident,) = deps.engine.open_incidents()
    assert (incident.account_id, incident.region, incident.reason) == (
        OTHER, "eu-west-1", "miner")

    response, name = driver.command(f"open {world.instance_id} --account {NO_ROLE}")
    reply = driver.wait_reply(name, "no role")
    assert f"{NO_ROLE}=arn:aws:iam::{NO_ROLE}:role/irbot-responder" in reply
    assert len(deps.engine.open_incidents()) == 1


def test_open_flags_are_checked() -> None:
    parsed = parse_command("open --region eu-west-1 i-0123456789abcdef0 --account "
                           "111122223333 crypto miner")
    assert parsed == Open(instance_id="i-0123456789abcdef0", reason="crypto miner",
                          account_id="111122223333", region="eu-west-1")
    assert parse_command("open i-0123456789abcdef0 --region=us-west-2") == Open(
        instance_id="i-0123456789abcdef0", reason="", region="us-west-2")
    for bad, says in [("open i-0123456789abcdef0 --account 12", "12-digit"),
                      ("open i-0123456789abcdef0 --region mars", "region like"),
                      ("open i-0123456789abcdef0 --acount 111122223333", "option"),
                      ("open --region us-west-2", "Which instance"),
                      ("open i-0123456789abcdef0 --account", "needs a value")]:
        with pytest.raises(BadInput, match=says):
            parse_command(bad)


def test_account_roles_setting_is_checked() -> None:
    from bot.settings import SettingsError, load_settings
    from tests.fake_slack import FakeSlack
    from tests.harness import env

    base = {**env(FakeSlack(), "sqlite://"), "AWS_REGION": "us-east-1"}
    good = load_settings({**base, "IRBOT_ACCOUNT_ROLES": f"{OTHER}={OTHER_ROLE}"})
    assert good.account_roles == ((OTHER, OTHER_ROLE),)
    for value, says in [(f"{NO_ROLE}={OTHER_ROLE}", "must live in the account"),
                        ("222233334444", "account=role-ARN"),
                        (f"{OTHER}={OTHER_ROLE},{OTHER}={OTHER_ROLE}", "twice")]:
        with pytest.raises(SettingsError, match=says):
            load_settings({**base, "IRBOT_ACCOUNT_ROLES": value})
