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


def _require(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: {what}")
    if _PLACEHOLDER.match(value):
        raise SettingsError(f"{name} still holds a placeholder ({value!r}): {what}")
    return value


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
    return Settings(
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
