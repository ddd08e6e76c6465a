"""The FastAPI + Bolt factory: /slack/events, the finding intakes, /healthz."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from slack_bolt import App, BoltRequest

from bot import blocks
from bot.deps import Deps
from bot.settings import Settings
from handlers import actions, commands, home, intake_http
from playbooks.model import Question
from storage.db import ping
from storage.models import Approval, Incident

log = logging.getLogger(__name__)
MAX_SLACK_BODY = 1024 * 1024


def create_bolt(settings: Settings, deps: Deps) -> App:
    """Return the Bolt app with every listener registered."""
    bolt = App(
        client=deps.slack,
        signing_secret=settings.slack_signing_secret,
        token_verification_enabled=False,
        process_before_response=False,
        # Steps run in lazy listeners on this pool; one isolation holds one worker.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="irbot"),
    )
    engine = deps.engine

    def open_with_links() -> tuple[list[Incident], dict[str, str]]:
        open_now = engine.open_incidents()
        links = {
            i.id: deps.notifier.permalink(i.channel_id, i.root_ts)
            for i in open_now if i.channel_id and i.root_ts
        }
        return open_now, links

    def status_text() -> str:
        return blocks.status_text(*open_with_links())

    commands.register(
        bolt, engine=engine, command=settings.command,
        help_text=lambda: blocks.help_text(settings.command, engine.playbook.steps),
        status_text=status_text, link=deps.notifier.permalink, channels=settings.channels,
        quick_is_responder=deps.access.quick_is_responder,
    )

    def open_reason(trigger_id: str, approval: Approval, denial: bool) -> None:
        step = engine.playbook.get(approval.step_id)
        if step is not None and trigger_id:
            deps.notifier.open_reason_modal(trigger_id, approval, step, denial=denial)

    def ask(trigger_id: str, channel: str, incident_id: str, step_id: str,
            question: Question) -> None:
        step = engine.playbook.get(step_id)
        if step is not None:
            deps.notifier.ask(trigger_id, channel, incident_id, step, question)

    def cancel_auto(incident_id: str, user: str) -> str | None:
        return deps.intake.cancel_countdown(incident_id=incident_id, actor=user)

    actions.register(bolt, engine=engine, channels=settings.channels, open_reason=open_reason,
                     link=deps.notifier.permalink, ask=ask, tell=deps.notifier.tell,
                     cancel_auto=cancel_auto)
    def home_view(user: str) -> dict[str, object]:
        mine = engine.open_incidents_of(user)
        links = {i.id: deps.notifier.permalink(i.channel_id, i.root_ts)
                 for i in mine if i.channel_id and i.root_ts}
        waiting = engine.approvals_waiting_for(user)
        approval_links = {a.id: deps.notifier.permalink(a.channel_id, a.message_ts)
                          for a in waiting if a.channel_id and a.message_ts}
        return blocks.home_view(mine, links, waiting, approval_links)

    home.register(bolt, home_view=home_view)
    return bolt


def create_app(settings: Settings, deps: Deps) -> FastAPI:
    """Return the HTTP app: Slack's requests in, findings in, health out."""
    bolt = create_bolt(settings, deps)

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        yield
        # Stopping (SIGTERM): findings already answered 202 get their digests, and an
        # automatic isolation under way finishes rather than being cut off.
        await run_in_threadpool(deps.intake.shutdown, 10.0)

    api = FastAPI(title="irbot", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    api.state.bolt = bolt
    api.state.deps = deps

    @api.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_SLACK_BODY:
            return Response(status_code=413, content="request too large")
        try:
            bolt_request = BoltRequest(
                body=body.decode("utf-8", errors="replace"),
                query=request.url.query,
                headers={k: v for k, v in request.headers.items()},
            )
        except RecursionError:  # Bolt parses the payload here; a deep one is bad input
            return Response(status_code=400, content="payload nested too deeply")
        except (AttributeError, TypeError, ValueError):  # a payload that is not an object
            return Response(status_code=400, content="malformed Slack payload")
        try:
            # Bolt's dispatch blocks until the listener acks: keep it off the event loop.
            bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        except Exception:  # Bolt's own parsing of a payload of the wrong shape
            ref = uuid.uuid4().hex[:8]
            log.exception("Slack request could not be dispatched (ref %s)", ref)
            return Response(status_code=400, content=f"malformed Slack request (ref {ref})")
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    intake_http.register(api, settings, deps)

    @api.get("/healthz")
    async def healthz() -> Response:
        ok = await run_in_threadpool(ping, deps.db)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "down"},
            status_code=200 if ok else 503,
        )

    return api
