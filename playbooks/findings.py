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


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _remote(details: Any) -> list[str]:
    """Describe a remoteIpDetails block: address, organisation, city and country."""
    ip = _dig(details, "ipAddressV4") or _dig(details, "ipAddressV6")
    if not isinstance(ip, str) or not ip:
        return []
    where = [str(x) for x in (_dig(details, "organization", "asnOrg"),
                              _dig(details, "city", "cityName"),
                              _dig(details, "country", "countryName")) if x]
    return [f"remote IP {ip}" + (f" ({', '.join(where)})" if where else "")]


def observed(raw: dict[str, Any]) -> list[str]:
    """Return what GuardDuty saw, from the finding's `service.action`: remote IP, domain,
    ports, country, API call. Unknown shapes give nothing rather than an error."""
    action = _dig(raw, "service", "action")
    if not isinstance(action, dict):
        return []
    seen: list[str] = []
    network = action.get("networkConnectionAction")
    if isinstance(network, dict):
        seen += _remote(network.get("remoteIpDetails"))
        direction = network.get("connectionDirection")
        port = _dig(network, "remotePortDetails", "port")
        local = _dig(network, "localPortDetails", "port")
        proto = network.get("protocol")
        parts = [f"{direction.lower()}" if isinstance(direction, str) else "",
                 f"remote port {port}" if port is not None else "",
                 f"local port {local}" if local is not None else "",
                 str(proto) if proto else ""]
        if any(parts):
            seen.append(" ".join(p for p in parts if p))
    domain = _dig(action, "dnsRequestAction", "domain")
    if isinstance(domain, str) and domain:
        seen.append(f"domain {domain}")
    probes = _dig(action, "portProbeAction", "portProbeDetails")
    if isinstance(probes, list):
        for probe in probes[:3]:
            seen += _remote(_dig(probe, "remoteIpDetails"))
            port = _dig(probe, "localPortDetails", "port")
            if port is not None:
                seen.append(f"probed local port {port}")
    api = action.get("awsApiCallAction")
    if isinstance(api, dict):
        name = api.get("api")
        if name:
            seen.append(f"API call {api.get('serviceName', '')} {name}".replace("  ", " "))
        seen += _remote(api.get("remoteIpDetails"))
    return [s[:200] for s in seen[:8]]
