"""Build requests the way Slack sends them: form-encoded and signed with the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Return Slack's signature headers for `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command(*, text: str, user: str, channel: str, response_url: str,
                  command: str = "/ir", team: str = "T0TEAM") -> str:
    """Return the form body of a slash command invocation."""
    return urlencode({
        "token": "legacy-unused",
        "team_id": team,
        "team_domain": "fake",
        "channel_id": channel,
        "channel_name": "incidents",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0IRBOT",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    })


def block_action(*, button: dict[str, Any], user: str, channel: str, message_ts: str,
                 response_url: str, team: str = "T0TEAM") -> str:
    """Return the form body of a click on `button` (as found in a message's blocks)."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0IRBOT",
        "token": "legacy-unused",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "incidents"},
        "message": {"ts": message_ts, "type": "message"},
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": button["action_id"],
            "block_id": button.get("block_id", "b"),
            "text": button["text"],
            "value": button.get("value", ""),
            "action_ts": str(time.time()),
        }],
    }
    return urlencode({"payload": json.dumps(payload)})


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return a message's buttons by action_id."""
    found: dict[str, dict[str, Any]] = {}
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    found[element["action_id"]] = {**element, "block_id": block.get("block_id")}
    return found
