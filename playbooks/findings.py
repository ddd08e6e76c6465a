"""GuardDuty findings in the domain: what a checked finding holds, and how it is shown."""

from __future__ import annotations

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


