"""Signed, Slack-shaped requests: the stand-in's helpers (bot/standin/requests.py)."""

from bot.standin.requests import block_action, buttons, sign, slash_command

__all__ = ["block_action", "buttons", "sign", "slash_command"]
