"""Validation of GuardDuty findings as EventBridge (or SNS) delivers them."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from aws.instances import is_instance_id
from handlers.parsing import BadInput
from playbooks.findings import FindingIn

_FINDING_ID = re.compile(r"^[A-Za-z0-9:_.-]{1,128}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_finding(body: Any) -> FindingIn:
    """Accept an EventBridge event (detail-type GuardDuty Finding) or a bare finding."""
    if not isinstance(body, dict):
        raise BadInput("the body is not a JSON object")
    if "detail" in body or "detail-type" in body:
        if body.get("detail-type") != "GuardDuty Finding":
            raise BadInput(f"detail-type is {str(body.get('detail-type'))[:60]!r}, "
                           "not 'GuardDuty Finding'")
        finding = body.get("detail")
    else:
        finding = body
    if not isinstance(finding, dict):
        raise BadInput("the event has no finding under 'detail'")
    finding_id, kind = finding.get("id"), finding.get("type")
    if not isinstance(finding_id, str) or not _FINDING_ID.match(finding_id):
        raise BadInput("the finding has no valid 'id'")
    if not isinstance(kind, str) or not 0 < len(kind) <= 256:
        raise BadInput("the finding has no valid 'type'")
    severity = finding.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, int | float) or \
            not math.isfinite(severity) or not 0 <= severity <= 10:
        raise BadInput("the finding's 'severity' is not a number from 0 to 10")
    account, region = finding.get("accountId"), finding.get("region")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise BadInput("the finding has no valid 'accountId'")
    if not isinstance(region, str) or not _REGION.match(region):
        raise BadInput("the finding has no valid 'region'")
    resource = finding.get("resource")
    if not isinstance(resource, dict):
        raise BadInput("the finding has no 'resource'")
    resource_type = str(resource.get("resourceType", ""))[:64]
    instance_id = ""
    if resource_type == "Instance":
        details = resource.get("instanceDetails")
        candidate = details.get("instanceId") if isinstance(details, dict) else None
        if not isinstance(candidate, str) or not is_instance_id(candidate):
            raise BadInput("an Instance finding without a valid instanceDetails.instanceId")
        instance_id = candidate
    service = finding.get("service")
    service = service if isinstance(service, dict) else {}
    extra = service.get("additionalInfo")
    extra = extra if isinstance(extra, dict) else {}
    count = service.get("count", 1)
    return FindingIn(
        id=finding_id, type=kind, severity=float(severity),
        title=str(finding.get("title", ""))[:300],
        description=str(finding.get("description", ""))[:1000],
        account_id=account, region=region, resource_type=resource_type,
        instance_id=instance_id,
        count=count if isinstance(count, int) and count > 0 else 1,
        first_seen=_time(service.get("eventFirstSeen")),
        last_seen=_time(service.get("eventLastSeen")),
        archived=service.get("archived") is True,
        sample=extra.get("sample") is True or str(extra.get("sample")).lower() == "true",
        raw=finding,
    )
