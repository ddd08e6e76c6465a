"""Drive the app the way Slack does: signed form posts in, the stand-in's Web API out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.standin.requests import block_action, buttons, sign, slash_command
from bot.standin.slack_api import FakeSlack


@dataclass
class SlackDriver:
    """Sends commands and clicks into the app behind `http` (an httpx client)."""

    http: httpx.Client
    slack: FakeSlack
    secret: str
    channel: str
    user: str = ""  # who clicks and types when a call does not say
    counter: list[int] = field(default_factory=lambda: [0])

    def _response_url(self) -> str:
        self.counter[0] += 1
        return self.slack.response_url(f"r{self.counter[0]}")

    def _post(self, body: str) -> httpx.Response:
        return self.http.post("/slack/events", content=body, headers=sign(self.secret, body))

    def command(self, text: str, *, user: str = "") -> tuple[httpx.Response, str]:
        """Send `/ir <text>`; return the HTTP response and the response_url name it carries."""
        url = self._response_url()
        body = slash_command(text=text, user=user or self.user, channel=self.channel,
                             response_url=url)
        return self._post(body), url.rsplit("/", 1)[-1]

    def click(self, action_id: str, *, message_ts: str, user: str = "",
              button: dict[str, Any] | None = None) -> tuple[httpx.Response, str]:
        """Click a button of the message at `message_ts` as the stand-in holds it."""
        if button is None:
            message = self.slack.messages[(self.channel, message_ts)]
            button = buttons(message)[action_id]
        url = self._response_url()
        body = block_action(button=button, user=user or self.user, channel=self.channel,
                            message_ts=message_ts, response_url=url)
        return self._post(body), url.rsplit("/", 1)[-1]

    def replies(self, name: str) -> list[str]:
        """Return the texts posted to one response_url."""
        return [str(c.args.get("text", "")) for c in self.slack.responses if c.method == name]

    def wait_reply(self, name: str, contains: str = "", timeout: float = 30) -> str:
        """Wait for a reply on a response_url that contains `contains`; return it."""
        def found() -> str | None:
            return next((t for t in self.replies(name) if contains in t), None)
        return str(self.slack.wait_for(found, timeout))

    def root(self) -> tuple[str, dict[str, Any]]:
        """Return the ts and current content of the (only) incident root message."""
        roots = [(k[1], m) for k, m in self.slack.messages.items()
                 if k[0] == self.channel and not m.get("thread_ts")]
        if len(roots) != 1:
            raise AssertionError(f"expected one root message, found {len(roots)}")
        return roots[0]

    def wait_root(self, timeout: float = 30) -> tuple[str, dict[str, Any]]:
        """Wait until a root message is posted; return it."""
        self.slack.wait_for(lambda: self.slack.calls_to("chat.postMessage"), timeout)
        return self.root()
