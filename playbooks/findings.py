"""GuardDuty findings in the domain: what a checked finding holds, and how it is shown."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FindingIn:
    """A GuardDuty finding, checked; `instance_id` is empty when it is not about EC2."""

    id: str
    type: str
    severity: float
    title: str
    description: str
    account_id: str
    region: str
    resource_type: str
    instance_id: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    archived: bool
    sample: bool
    raw: dict[str, Any]


def severity_label(severity: float) -> str:
    """Return GuardDuty's band for a severity number."""
    if severity >= 9.0:
        return "Critical"
    if severity >= 7.0:
        return "High"
    if severity >= 4.0:
        return "Medium"
    return "Low"




@dataclass(frozen=True)
class FindingPolicy:
    """Which findings act: minimum severity, type patterns (wildcards), non-EC2 handling."""

    min_severity: float = 4.0
    include: tuple[str, ...] = ()  # empty: every type
    exclude: tuple[str, ...] = ()
    non_ec2: str = "notice"  # or "ignore"


def skip_reason(finding: FindingIn, policy: FindingPolicy) -> str:
    """Return why the finding opens nothing ("" when it acts)."""
    if finding.archived:
        return "archived"
    if finding.severity < policy.min_severity:
        return (f"severity {finding.severity:g} below IRBOT_MIN_SEVERITY "
                f"{policy.min_severity:g}")
    if policy.include and not any(fnmatch.fnmatchcase(finding.type, p)
                                  for p in policy.include):
        return "type not in IRBOT_FINDING_TYPES_INCLUDE"
    if any(fnmatch.fnmatchcase(finding.type, p) for p in policy.exclude):
        return "type in IRBOT_FINDING_TYPES_EXCLUDE"
    if not finding.instance_id and policy.non_ec2 == "ignore":
        return "not about an EC2 instance (IRBOT_NON_EC2_FINDINGS=ignore)"
    return ""
