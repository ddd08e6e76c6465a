"""The tests' fake Slack is the stand-in `irbot demo` uses (bot/standin)."""

from bot.standin.slack_api import Call, FakeSlack

__all__ = ["Call", "FakeSlack"]
