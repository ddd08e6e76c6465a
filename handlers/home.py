"""The bot's Home tab: the open incidents, with links to their threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

HomeView = Callable[[str], dict[str, Any]]


def register(app: App, *, home_view: HomeView) -> None:
    """Publish the Home tab whenever a user opens it."""

    @app.event("app_home_opened")
    def publish(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = str(event.get("user", ""))
        if user:
            client.views_publish(user_id=user, view=home_view(user))
