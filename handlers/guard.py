"""Wrap lazy listeners so a crash reaches the user and the audit trail, not just a log."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any

from playbooks.engine import Engine

log = logging.getLogger(__name__)


def guarded(engine: Engine, what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Catch any exception of a lazy listener: log it, audit it, tell the user a reference."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(body: dict[str, Any], respond: Any) -> None:
            try:
                fn(body=body, respond=respond)
            except Exception as exc:
                ref = uuid.uuid4().hex[:8]
                log.exception("%s crashed (ref %s)", what, ref)
                user = str((body.get("user") or {}).get("id") or body.get("user_id") or "?")
                try:
                    engine.record(action=what, actor=user, outcome="error",
                                  detail=f"ref {ref}: {type(exc).__name__}: {exc}")
                finally:
                    if respond is not None:  # a modal submission has no response_url
                        respond(text=f":boom: irbot hit an unexpected error (ref `{ref}`). "
                                     "Nothing more was done; the error is in the audit trail.",
                                response_type="ephemeral", replace_original=False)

        return run

    return wrap


def channel_of(body: dict[str, Any]) -> str:
    """Return the channel a command or click came from ('' when there is none)."""
    if body.get("channel_id"):
        return str(body["channel_id"])
    channel = body.get("channel") or {}
    if isinstance(channel, dict) and channel.get("id"):
        return str(channel["id"])
    container = body.get("container") or {}
    return str(container.get("channel_id", "")) if isinstance(container, dict) else ""


def wrong_channel_text(allowed: tuple[str, ...]) -> str:
    """Return the refusal for a command or click from a channel irbot does not serve."""
    where = ", ".join(f"<#{c}>" for c in allowed)
    return f"irbot only acts in {where}. Nothing was done."
