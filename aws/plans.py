"""What a step will do, call by call, checked with EC2's DryRun where the API has one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aws.errors import AccessDenied, AwsError
from aws.session import Aws, CallLog

WOULD_SUCCEED = "would succeed"
NO_DRY_RUN = "no DryRun for this API"


@dataclass(frozen=True)
class PlannedCall:
    action: str  # the IAM action, e.g. ec2:ModifyNetworkInterfaceAttribute
    resource: str
    what: str
    check: str = NO_DRY_RUN
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the planned call as JSON-ready data."""
        return asdict(self)


def dry_run(aws: Aws, log: CallLog, operation: str, **params: Any) -> tuple[str, bool]:
    """Ask EC2 whether the call would be allowed; return (what it said, ok)."""
    try:
        aws.call(log, "ec2", operation, DryRun=True, **params)
    except AccessDenied as exc:
        return f"DENIED: {exc}", False
    except AwsError as exc:
        if exc.code == "DryRunOperation":
            return WOULD_SUCCEED, True
        return f"check failed: {exc}", False
    # Some emulators ignore DryRun: the call went through, so it is allowed.
    return WOULD_SUCCEED, True


def checked(aws: Aws, log: CallLog, action: str, resource: str, what: str,
            operation: str, **params: Any) -> Callable[[], PlannedCall]:
    """Return a task that dry-runs one EC2 call and describes it."""
    def task() -> PlannedCall:
        check, ok = dry_run(aws, log, operation, **params)
        return PlannedCall(action=action, resource=resource, what=what, check=check, ok=ok)
    return task
