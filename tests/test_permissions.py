"""Every AWS action declares its IAM permissions, and iam-policy.json is exactly their union."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from aws.isolation import isolate
from aws.session import AwsFactory, CallLog
from playbooks.catalog import EC2_COMPROMISE, OPEN_PERMISSIONS
from playbooks.isolate import ISOLATE
from tests.aws_world import World

ROOT = Path(__file__).resolve().parent.parent
PREFIX = {"ec2": "ec2", "autoscaling": "autoscaling", "elbv2": "elasticloadbalancing",
          "iam": "iam"}


def test_every_step_declares_permissions() -> None:
    for step in EC2_COMPROMISE.steps + EC2_COMPROMISE.offered:
        assert step.permissions, step.id
        assert all(":" in p for p in step.permissions), step.id


def test_policy_file_is_the_union_of_declared_permissions() -> None:
    policy = json.loads((ROOT / "iam-policy.json").read_text())
    assert policy == EC2_COMPROMISE.iam_policy()
    declared = ({p for s in EC2_COMPROMISE.steps + EC2_COMPROMISE.offered
                 for p in s.permissions} | set(OPEN_PERMISSIONS))
    assert set(policy["Statement"][0]["Action"]) == declared


def _iam_actions(log: CallLog) -> set[str]:
    actions = set()
    for record in log.records:
        client: Any = boto3.client(record.service, region_name="us-east-1")
        api = client.meta.method_to_api_mapping[record.operation]
        actions.add(f"{PREFIX[record.service]}:{api}")
    return actions


def test_isolation_calls_only_what_it_declares(world: World) -> None:
    aws = AwsFactory(default_region="us-east-1").for_region()
    log = CallLog()
    isolate(aws, log, instance_id=world.instance_id, incident_id="IR-2026-0001",
            vpc_id=world.vpc_id)
    used = _iam_actions(log)
    assert used <= set(ISOLATE.permissions), used - set(ISOLATE.permissions)


def test_readme_step_table_comes_from_the_playbook() -> None:
    from bot.deps import DEFAULT_APPROVAL_STEPS

    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- steps:begin", 1)[1].split("-->", 1)[1].split(
        "<!-- steps:end -->", 1)[0].strip()
    assert table == EC2_COMPROMISE.markdown_table(frozenset(DEFAULT_APPROVAL_STEPS))
