"""The EventBridge template in deploy/ is the one the README shows, and it points at irbot's
intake with the token the way the endpoint checks it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Sub, !GetAtt, !Ref) as {tag: value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def test_readme_shows_the_template() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- cfn:begin -->\n```yaml\n(.*?)```\n<!-- cfn:end -->", readme,
                      re.DOTALL)
    assert shown is not None
    assert shown.group(1) == (ROOT / "deploy" / "guardduty-to-irbot.yaml").read_text()


def test_template_sends_guardduty_findings_to_the_intake_with_the_token() -> None:
    template = yaml.load((ROOT / "deploy" / "guardduty-to-irbot.yaml").read_text(),
                         Loader=_CfnLoader)
    resources = template["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    assert {"AWS::Events::Connection", "AWS::Events::ApiDestination",
            "AWS::Events::Rule"} <= kinds
    auth = resources["IrbotConnection"]["Properties"]["AuthParameters"][
        "ApiKeyAuthParameters"]
    assert auth == {"ApiKeyName": "Authorization", "ApiKeyValue": {"Sub": "Bearer ${IntakeToken}"}}
    destination = resources["IrbotDestination"]["Properties"]
    assert destination["InvocationEndpoint"] == {"Sub": "${IrbotUrl}/aws/guardduty"}
    assert destination["HttpMethod"] == "POST"
    rule = resources["GuardDutyToIrbot"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["GuardDuty Finding"]
    assert rule["EventPattern"]["source"] == ["aws.guardduty"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"GetAtt": "IrbotDestination.Arn"}
    assert target["RoleArn"] == {"GetAtt": "IrbotInvokeRole.Arn"}
