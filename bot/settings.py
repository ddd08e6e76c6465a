"""Typed settings read from the environment; missing or placeholder secrets stop start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///irbot.db"

_PLACEHOLDER = re.compile(
    r"^(|changeme|change-me|changethis|placeholder|todo|xxx+|secret|none|null|"
    r"xox[bpa]-(x+|your.*|\.\.\.)|your[-_ ].*|<.*>|\$\{.*\}|\.\.\.)$",
    re.IGNORECASE,
)


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str
    slack_signing_secret: str
    channel: str
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_app_token: str = ""
    database_url: str = DEFAULT_DATABASE_URL
    command: str = "/ir"
    aws_region: str = "us-east-1"
    intake_token: str = ""
    responders: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    allow_everyone: bool = False
    extra_channels: tuple[str, ...] = ()
    approval_required: tuple[str, ...] | None = None  # None: the playbook's defaults
    approval_ttl_seconds: int = 30 * 60
    assume_role_arn: str = ""
    evidence_bucket: str = ""
    quarantine_profile: str = ""
    snapshot_poll_seconds: int = 30
    ssm_wait_seconds: int = 120
    golden_ami: str = ""
    min_severity: float = 4.0
    finding_types_include: tuple[str, ...] = ()
    finding_types_exclude: tuple[str, ...] = ()
    non_ec2_findings: str = "notice"
    account_roles: tuple[tuple[str, str], ...] = ()  # (account id, role ARN)
    sns_topics: tuple[str, ...] = ()
    auto_isolate: tuple[str, ...] = ()  # finding type patterns; empty: off
    auto_isolate_min_severity: float = 7.0
    auto_isolate_delay_seconds: int = 60

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels commands and clicks are accepted from."""
        return (self.channel, *self.extra_channels)


def _require(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: {what}")
    if _PLACEHOLDER.match(value):
        raise SettingsError(f"{name} still holds a placeholder ({value!r}): {what}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Split a comma-separated setting into its items (stripped, empty ones dropped)."""
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _ids(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Parse a comma-separated list of Slack user (U/W...) and user-group (S...) ids."""
    ids = _list(env, name)
    for value in ids:
        if not re.fullmatch(r"[UWS][A-Z0-9]{2,}", value):
            raise SettingsError(f"{name} holds {value!r}: use Slack user ids (U...) or "
                                "user-group ids (S...), not names")
    return ids


def _patterns(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Parse comma-separated finding type patterns (* and ? wildcards)."""
    return _checked_patterns(name, _list(env, name))


def _checked_patterns(name: str, found: tuple[str, ...]) -> tuple[str, ...]:
    """Return the finding type patterns from setting `name`, or say which is not one."""
    for pattern in found:
        if not re.fullmatch(r"[A-Za-z0-9:/.!&*?_-]{1,256}", pattern):
            raise SettingsError(f"{name} holds {pattern!r}, not a finding type pattern like "
                                "Backdoor:EC2/* or *:EC2/C&CActivity*")
    return found


_SEVERITY_ITEM = re.compile(r"(?:min_severity\s*=|(?:severity\s*)?>=)\s*(\S+)", re.I)


def _auto_isolate(env: Mapping[str, str]) -> tuple[tuple[str, ...], float]:
    """Parse IRBOT_AUTO_ISOLATE: finding type patterns, and optionally the least severity
    as one more item (`min_severity=7` or `>=7`); IRBOT_AUTO_ISOLATE_MIN_SEVERITY says the
    same on its own. Return the patterns and the severity."""
    name = "IRBOT_AUTO_ISOLATE"
    types: list[str] = []
    given: list[str] = []
    for item in _list(env, name):
        inline = _SEVERITY_ITEM.fullmatch(item)
        if inline:
            given.append(inline.group(1))
        elif re.fullmatch(r"[0-9.]+", item):
            raise SettingsError(f"{name} holds {item!r}: a finding type pattern is expected; "
                                f"write a minimum severity as min_severity={item}")
        else:
            types.append(item)
    if len(given) > 1:
        raise SettingsError(f"{name} names more than one minimum severity")
    if given and not types:
        raise SettingsError(f"{name} names a minimum severity but no finding types")
    severity = _severity(env, "IRBOT_AUTO_ISOLATE_MIN_SEVERITY", "7.0")
    if given:
        stated = _severity_value(f"{name}'s min_severity", given[0])
        if env.get("IRBOT_AUTO_ISOLATE_MIN_SEVERITY", "").strip() and stated != severity:
            raise SettingsError(f"{name} says min_severity={given[0]} but "
                                "IRBOT_AUTO_ISOLATE_MIN_SEVERITY says otherwise: set one")
        severity = stated
    return _checked_patterns(name, tuple(types)), severity


_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]+")
_TOPIC_ARN = re.compile(r"arn:aws[\w-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[\w-]{1,256}")


def _account_roles(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Parse IRBOT_ACCOUNT_ROLES: comma-separated account=role-ARN pairs."""
    pairs = []
    for part in _list(env, "IRBOT_ACCOUNT_ROLES"):
        account, _, arn = (x.strip() for x in part.partition("="))
        match = _ROLE_ARN.fullmatch(arn)
        if not re.fullmatch(r"\d{12}", account) or match is None:
            raise SettingsError(f"IRBOT_ACCOUNT_ROLES holds {part!r}: use account=role-ARN "
                                "pairs like 111122223333=arn:aws:iam::111122223333:role/irbot")
        if match.group(1) != account:
            raise SettingsError(f"IRBOT_ACCOUNT_ROLES maps {account} to a role in account "
                                f"{match.group(1)}: the role must live in the account it acts in")
        pairs.append((account, arn))
    accounts = [a for a, _ in pairs]
    if len(set(accounts)) != len(accounts):
        raise SettingsError("IRBOT_ACCOUNT_ROLES lists an account twice")
    return tuple(pairs)


def _topics(env: Mapping[str, str]) -> tuple[str, ...]:
    found = _list(env, "IRBOT_SNS_TOPICS")
    for topic in found:
        if not _TOPIC_ARN.fullmatch(topic):
            raise SettingsError(f"IRBOT_SNS_TOPICS holds {topic!r}, not an SNS topic ARN like "
                                "arn:aws:sns:us-east-1:111122223333:guardduty-findings")
    return found


def _severity(env: Mapping[str, str], name: str, default: str) -> float:
    return _severity_value(name, env.get(name, "").strip() or default)


def _severity_value(name: str, text: str) -> float:
    """Return the severity `text` given for `name`, or say it is not one from 0 to 10."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 10.0:
        raise SettingsError(f"{name} must be a number from 0 to 10, not {text!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _duration(env: Mapping[str, str], name: str, *, default: int) -> int:
    """Parse seconds, or a number with s, m or h (e.g. 30m)."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    match = re.fullmatch(r"(\d+)\s*([smh]?)", value)
    if not match:
        raise SettingsError(f"{name} must be a duration like 1800, 30m or 1h, not {value!r}")
    seconds = int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not 60 <= seconds <= 24 * 3600:
        raise SettingsError(f"{name} must be between 1 minute and 24 hours")
    return seconds


def load_settings(env: Mapping[str, str] | None = None, *, socket_mode: bool = False) -> Settings:
    """Read settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    token = _require(env, "SLACK_BOT_TOKEN", "the bot token (xoxb-...) from the Slack app")
    if not token.startswith("xoxb-"):
        raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    secret = _require(env, "SLACK_SIGNING_SECRET", "the signing secret from the Slack app")
    channel = _require(env, "IRBOT_CHANNEL",
                       "the channel id (C...) where incidents are posted")
    if not re.fullmatch(r"[CG][A-Z0-9]{2,}", channel):
        raise SettingsError(f"IRBOT_CHANNEL must be a channel id like C0123ABCD, not {channel!r}")
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    if socket_mode:
        app_token = _require(env, "SLACK_APP_TOKEN", "the app-level token (xapp-...) for "
                             "Socket Mode")
        if not app_token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
    if not re.match(r"^https?://", api_url):
        raise SettingsError(f"SLACK_API_URL must be an http(s) URL, not {api_url!r}")
    if not api_url.endswith("/"):
        api_url += "/"
    command = env.get("IRBOT_COMMAND", "").strip() or "/ir"
    if not re.fullmatch(r"/[a-z0-9_-]{1,31}", command):
        raise SettingsError(f"IRBOT_COMMAND must look like /ir, not {command!r}")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if not region:
        raise SettingsError("AWS_REGION is not set: the region irbot acts in by default")
    responders = _ids(env, "IRBOT_RESPONDERS")
    allow_everyone = _flag(env, "IRBOT_ALLOW_EVERYONE")
    if not responders and not allow_everyone:
        raise SettingsError(
            "IRBOT_RESPONDERS is empty: list the Slack user (U...) or user-group (S...) ids "
            "who may act, or set IRBOT_ALLOW_EVERYONE=true on purpose")
    extra = _list(env, "IRBOT_EXTRA_CHANNELS")
    for extra_channel in extra:
        if not re.fullmatch(r"[CG][A-Z0-9]{2,}", extra_channel):
            raise SettingsError(f"IRBOT_EXTRA_CHANNELS holds {extra_channel!r}, not a channel "
                                "id like C0123ABCD")
    required_text = env.get("IRBOT_APPROVAL_REQUIRED", "").strip()
    approval_required: tuple[str, ...] | None = None
    if required_text.lower() == "none":
        approval_required = ()
    elif required_text:
        approval_required = tuple(
            s.strip().lower() for s in required_text.split(",") if s.strip())
    ttl = _duration(env, "IRBOT_APPROVAL_TTL", default=30 * 60)
    role = env.get("IRBOT_ASSUME_ROLE_ARN", "").strip()
    if role and not _ROLE_ARN.fullmatch(role):
        raise SettingsError(f"IRBOT_ASSUME_ROLE_ARN must be an IAM role ARN, not {role!r}")
    bucket = env.get("IRBOT_EVIDENCE_BUCKET", "").strip()
    if bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise SettingsError(f"IRBOT_EVIDENCE_BUCKET must be an S3 bucket name, not {bucket!r}")
    profile = env.get("IRBOT_QUARANTINE_PROFILE", "").strip()
    if profile and not re.fullmatch(r"[\w+=,.@-]{1,128}", profile):
        raise SettingsError("IRBOT_QUARANTINE_PROFILE must be an instance profile name, "
                            f"not {profile!r}")
    poll = env.get("IRBOT_SNAPSHOT_POLL_SECONDS", "").strip() or "30"
    if not poll.isdigit() or not 1 <= int(poll) <= 3600:
        raise SettingsError("IRBOT_SNAPSHOT_POLL_SECONDS must be a whole number of seconds "
                            f"from 1 to 3600, not {poll!r}")
    ssm_wait = env.get("IRBOT_SSM_WAIT_SECONDS", "").strip() or "120"
    if not ssm_wait.isdigit() or not 10 <= int(ssm_wait) <= 1800:
        raise SettingsError("IRBOT_SSM_WAIT_SECONDS must be a whole number of seconds from 10 "
                            f"to 1800, not {ssm_wait!r}")
    golden = env.get("IRBOT_GOLDEN_AMI", "").strip()
    if golden and not re.fullmatch(r"ami-[0-9a-f]{8,17}", golden):
        raise SettingsError(f"IRBOT_GOLDEN_AMI must be an AMI id (ami-...), not {golden!r}")
    min_severity = _severity(env, "IRBOT_MIN_SEVERITY", "4.0")
    delay = env.get("IRBOT_AUTO_ISOLATE_DELAY", "").strip() or "60"
    if not delay.isdigit() or not 0 <= int(delay) <= 3600:
        raise SettingsError("IRBOT_AUTO_ISOLATE_DELAY must be a whole number of seconds from "
                            f"0 to 3600, not {delay!r}")
    intake = env.get("IRBOT_INTAKE_TOKEN", "").strip()
    if intake and (_PLACEHOLDER.match(intake) or len(intake) < 16):
        raise SettingsError("IRBOT_INTAKE_TOKEN must be a random secret of 16 characters or "
                            "more (it guards POST /aws/guardduty)")
    include = _patterns(env, "IRBOT_FINDING_TYPES_INCLUDE")
    exclude = _patterns(env, "IRBOT_FINDING_TYPES_EXCLUDE")
    non_ec2 = env.get("IRBOT_NON_EC2_FINDINGS", "").strip().lower() or "notice"
    if non_ec2 not in ("notice", "ignore"):
        raise SettingsError(f"IRBOT_NON_EC2_FINDINGS must be notice or ignore, not {non_ec2!r}")
    auto_types, auto_severity = _auto_isolate(env)
    return Settings(
        account_roles=_account_roles(env),
        sns_topics=_topics(env),
        auto_isolate=auto_types,
        auto_isolate_min_severity=auto_severity,
        auto_isolate_delay_seconds=int(delay),
        finding_types_include=include,
        finding_types_exclude=exclude,
        non_ec2_findings=non_ec2,
        min_severity=min_severity,
        golden_ami=golden,
        ssm_wait_seconds=int(ssm_wait),
        evidence_bucket=bucket,
        quarantine_profile=profile,
        snapshot_poll_seconds=int(poll),
        responders=responders,
        approvers=_ids(env, "IRBOT_APPROVERS"),
        allow_everyone=allow_everyone,
        extra_channels=extra,
        approval_required=approval_required,
        approval_ttl_seconds=ttl,
        assume_role_arn=role,
        slack_bot_token=token,
        slack_signing_secret=secret,
        channel=channel,
        slack_api_url=api_url,
        slack_app_token=app_token,
        database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        command=command,
        aws_region=region,
        intake_token=env.get("IRBOT_INTAKE_TOKEN", "").strip(),
    )
