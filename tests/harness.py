"""Drive the real app the way Slack does: signed form posts in, the fake Web API out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fake_slack import FakeSlack
from tests.signing import block_action, buttons, sign, slash_command

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
class SlackDriver:
    """Sends commands and clicks into the app at `base_url` (an httpx client)."""

    http: httpx.Client
    slack: FakeSlack
    counter: list[int] = field(default_factory=lambda: [0])

    def _response_url(self) -> str:
        self.counter[0] += 1
        return self.slack.response_url(f"r{self.counter[0]}")

    def command(self, text: str, *, user: str = ALICE) -> tuple[httpx.Response, str]:
        """Send `/ir <text>`; return the HTTP response and the response_url name it carries."""
        url = self._response_url()
        body = slash_command(text=text, user=user, channel=CHANNEL, response_url=url)
        response = self.http.post("/slack/events", content=body, headers=sign(SECRET, body))
        return response, url.rsplit("/", 1)[-1]

    def click(self, action_id: str, *, message_ts: str, user: str = ALICE,
              button: dict[str, Any] | None = None) -> tuple[httpx.Response, str]:
        """Click a button of the message at `message_ts` as the fake Slack holds it."""
        if button is None:
            message = self.slack.messages[(CHANNEL, message_ts)]
            button = buttons(message)[action_id]
        url = self._response_url()
        body = block_action(button=button, user=user, channel=CHANNEL, message_ts=message_ts,
                            response_url=url)
        response = self.http.post("/slack/events", content=body, headers=sign(SECRET, body))
        return response, url.rsplit("/", 1)[-1]

    def replies(self, name: str) -> list[str]:
        """Return the texts posted to one response_url."""
        return [str(c.args.get("text", "")) for c in self.slack.responses if c.method == name]

    def wait_reply(self, name: str, contains: str = "", timeout: float = 15) -> str:
        """Wait for a reply on a response_url that contains `contains`; return it."""
        def found() -> str | None:
            return next((t for t in self.replies(name) if contains in t), None)
        return str(self.slack.wait_for(found, timeout))

    def root(self) -> tuple[str, dict[str, Any]]:
        """Return the ts and current content of the (only) incident root message."""
        roots = [(k[1], m) for k, m in self.slack.messages.items()
                 if k[0] == CHANNEL and not m.get("thread_ts")]
        assert len(roots) == 1, roots
        return roots[0]

    def wait_root(self, timeout: float = 15) -> tuple[str, dict[str, Any]]:
        """Wait until a root message is posted; return it."""
        self.slack.wait_for(lambda: self.slack.calls_to("chat.postMessage"), timeout)
        return self.root()


def blocks_text(message: dict[str, Any]) -> str:
    """Return every text in a message's blocks, joined (for assertions)."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return json.dumps(blocks)
