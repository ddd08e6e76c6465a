"""The one place that posts and updates Slack messages (implements the engine's Notifier)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import blocks
from playbooks.model import Artifact, IncidentView, Question, Step, StepOutcome
from storage.models import Approval, StepRun

log = logging.getLogger(__name__)


class SlackNotifier:
    """Posts incident messages to the incident channel and its threads."""

    def __init__(self, client: WebClient, *, channel: str,
                 gated: frozenset[str] = frozenset()) -> None:
        self.client = client
        self.channel = channel
        self.gated = gated  # steps that need approval: their buttons say so
        self._permalinks: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            response = self.client.api_call(method, json=kwargs)
            return dict(response.data) if isinstance(response.data, dict) else {}
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.error("Slack %s failed: %s", method, exc)
            return None

    def post_root(self, view: IncidentView) -> tuple[str, str] | None:
        """Post the root message in the incident channel; return (channel, ts)."""
        data = self._call("chat.postMessage", channel=self.channel, unfurl_links=False,
                          **blocks.root_message(view, self.gated))
        if not data or not data.get("ts"):
            return None
        return str(data.get("channel") or self.channel), str(data["ts"])

    def update_root(self, view: IncidentView) -> None:
        """Re-render the root message in place."""
        incident = view.incident
        if not incident.channel_id or not incident.root_ts:
            return
        self._call("chat.update", channel=incident.channel_id, ts=incident.root_ts,
                   **blocks.root_message(view, self.gated))

    def post_step_result(self, view: IncidentView, step: Step, run: StepRun,
                         outcome: StepOutcome) -> None:
        """Post a step's result in the thread."""
        self._thread(view, blocks.step_result_message(view, step, run, outcome))

    def post_in_thread(self, view: IncidentView, text: str) -> bool:
        """Post a plain notice in the thread; True if it went."""
        return self._thread(view, {"text": text}) is not None

    def post_approval(self, view: IncidentView, step: Step,
                      approval: Approval) -> tuple[str, str] | None:
        """Post the approval request in the thread; return (channel, ts)."""
        data = self._thread(view, blocks.approval_message(view, step, approval))
        if not data or not data.get("ts"):
            return None
        return str(data.get("channel") or view.incident.channel_id), str(data["ts"])

    def update_approval(self, view: IncidentView, step: Step, approval: Approval) -> None:
        """Re-render the approval request in place."""
        if approval.channel_id and approval.message_ts:
            self._call("chat.update", channel=approval.channel_id, ts=approval.message_ts,
                       **blocks.approval_message(view, step, approval))

    def attach_file(self, view: IncidentView, artifact: Artifact, sha256: str) -> bool:
        """Upload an artifact into the incident thread, its hash in the comment."""
        incident = view.incident
        if not incident.channel_id or not incident.root_ts:
            return False
        try:
            self.client.files_upload_v2(
                channel=incident.channel_id, thread_ts=incident.root_ts,
                content=artifact.content, filename=artifact.filename, title=artifact.title,
                initial_comment=f"{artifact.title} · {len(artifact.content):,} bytes · "
                                f"SHA-256 `{sha256}`",
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.error("uploading %s failed: %s", artifact.filename, exc)
            return False
        return True

    def open_reason_modal(self, trigger_id: str, approval: Approval, step: Step, *,
                          denial: bool) -> None:
        """Open the modal that asks for a reason (trigger ids live 3 seconds)."""
        self._call("views.open", trigger_id=trigger_id,
                   view=blocks.reason_modal(approval, step, denial=denial))

    def post_notice(self, text: str) -> None:
        """Post a notice in the incident channel, outside any thread."""
        self._call("chat.postMessage", channel=self.channel, text=text, unfurl_links=False)

    def ask(self, trigger_id: str, channel: str, incident_id: str, step: Step,
            question: Question) -> None:
        """Open the modal asking for a value the step needs."""
        self._call("views.open", trigger_id=trigger_id,
                   view=blocks.question_modal(incident_id, step, question, channel))

    def post_countdown(self, view: IncidentView, text: str,
                       incident_id: str) -> tuple[str, str] | None:
        """Post a countdown with a Cancel button in the thread; return (channel, ts)."""
        data = self._thread(view, blocks.countdown_message(text, incident_id))
        if not data or not data.get("ts"):
            return None
        return str(data.get("channel") or view.incident.channel_id), str(data["ts"])

    def replace_message(self, channel: str, ts: str, text: str) -> None:
        """Replace a message (and its buttons) with plain text."""
        self._call("chat.update", channel=channel, ts=ts, text=text,
                   blocks=[{"type": "section", "text": blocks.mrkdwn(text)}])

    def tell(self, channel: str, user: str, text: str) -> None:
        """Send one person an ephemeral message in a channel."""
        self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    def _thread(self, view: IncidentView, message: dict[str, Any]) -> dict[str, Any] | None:
        incident = view.incident
        if not incident.channel_id or not incident.root_ts:
            log.error("%s has no thread to post in", incident.id)
            return None
        return self._call("chat.postMessage", channel=incident.channel_id,
                          thread_ts=incident.root_ts, unfurl_links=False, **message)

    def permalink(self, channel: str, ts: str) -> str:
        """Return a link to a message (cached; empty if Slack cannot say)."""
        with self._lock:
            if (channel, ts) in self._permalinks:
                return self._permalinks[(channel, ts)]
        try:
            data = self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("chat.getPermalink failed: %s", exc)
            return ""
        link = str(data.get("permalink", ""))
        with self._lock:
            self._permalinks[(channel, ts)] = link
        return link
