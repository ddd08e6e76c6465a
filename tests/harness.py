"""Drive the real app the way Slack does: signed form posts in, the fake Web API out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.standin import driver as standin_driver
from bot.standin.slack_api import FakeSlack

SECRET = "test-signing-secret-0123456789"
TOKEN = "xoxb-test-token"
CHANNEL = "C0INCIDENT"
ALICE = "U0ALICE"  # responder
BOB = "U0BOB"  # responder and approver
CAROL = "U0CAROL"  # responder through a group, approver through a group
MALLORY = "U0MALLORY"  # in the workspace, nothing more
RESPONDER_GROUP = "S0RESPOND"
APPROVER_GROUP = "S0APPROVE"


def env(slack: FakeSlack, database_url: str, **extra: str) -> dict[str, str]:
    """Return the environment `irbot serve` needs to talk to the fakes."""
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "IRBOT_CHANNEL": CHANNEL,
        "DATABASE_URL": database_url,
        "IRBOT_RESPONDERS": f"{ALICE},{BOB},{RESPONDER_GROUP}",
        "IRBOT_APPROVERS": f"{BOB},{APPROVER_GROUP}",
        **extra,
    }


@dataclass
class SlackDriver(standin_driver.SlackDriver):
    """The stand-in's driver with the tests' signing secret and channel."""

    secret: str = SECRET
    channel: str = CHANNEL
    user: str = ALICE


def blocks_text(message: dict[str, Any]) -> str:
    """Return every text in a message's blocks, joined (for assertions)."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return json.dumps(blocks)
