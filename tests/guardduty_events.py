"""GuardDuty events for tests: the shared fixtures, rewritten to moto's instances."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "guardduty"
TOKEN = "intake-token-0123456789abcdef"
EC2_EVENT = "cloud-custodian_ec2-duty-event_eventbridge-envelope.json"


def fixture(name: str) -> dict[str, Any]:
    """Return a fixture from ../shared/fixtures/guardduty (skip the test if it is absent)."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} is not beside the repository")
    return dict(json.loads(path.read_text()))


def ec2_event(instance_id: str, *, finding_id: str = "f-1", count: int = 1,
              severity: float = 8.0, account: str = "123456789012",
              kind: str = "", sample: bool | None = None) -> dict[str, Any]:
    """Return the EC2 fixture as EventBridge sends it, about `instance_id`. The fixture is
    a GuardDuty sample; `sample=False` makes it a real finding."""
    event = copy.deepcopy(fixture(EC2_EVENT))
    detail = event["detail"]
    detail["id"] = finding_id
    detail["accountId"] = account
    detail["severity"] = severity
    detail["resource"]["instanceDetails"]["instanceId"] = instance_id
    detail["service"]["count"] = count
    if kind:
        detail["type"] = kind
    if sample is not None:
        detail["service"].setdefault("additionalInfo", {})["sample"] = sample
    return event


def post_finding(http: httpx.Client, body: Any, token: str = TOKEN) -> httpx.Response:
    """POST a body to /aws/guardduty with the intake token."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post("/aws/guardduty", content=raw, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
