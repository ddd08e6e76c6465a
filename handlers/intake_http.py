"""The finding intakes over HTTP: POST /aws/guardduty (EventBridge API destination, bearer
token) and POST /aws/sns (SNS HTTPS subscription, signed messages). Both answer at once and
do the work afterwards; bad input gets a 4xx with the reason, never a 5xx (which AWS would
retry)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bot.deps import Deps
from bot.settings import Settings
from handlers.findings import parse_finding
from handlers.parsing import BadInput
from handlers.sns import SnsMessage, SnsRejected, SnsVerifier
from playbooks.findings import skip_reason

MAX_FINDING_BODY = 256 * 1024
MAX_SNS_BODY = 512 * 1024  # a 256 KiB message, escaped inside the SNS envelope


async def _json_body(request: Request, limit: int) -> Any:
    """Return the parsed JSON body, or the 413/400 answer saying why not."""
    too_large = JSONResponse({"error": f"body over {limit // 1024} KiB"}, status_code=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_large
    body = await request.body()
    if len(body) > limit:
        return too_large
    try:
        return json.loads(body)
    except ValueError:  # never 5xx for bad input: AWS would retry it
        return JSONResponse({"error": "malformed JSON"}, status_code=400)
    except RecursionError:  # 256 KiB of brackets nests deeper than the parser goes
        return JSONResponse({"error": "JSON nested too deeply"}, status_code=400)


def register(api: FastAPI, settings: Settings, deps: Deps) -> None:
    """Add both intake routes to the app."""
    policy = deps.intake.policy
    # deps.fetch_url is read at call time, so a test can point it at its own certificate.
    verifier = SnsVerifier(settings.sns_topics, fetch=lambda url: deps.fetch_url(url))

    def accept(body: Any, source: str) -> Response:
        """Check a finding, queue it, and say what will happen to it."""
        try:
            finding = parse_finding(body)
        except BadInput as exc:
            deps.engine.record(action="finding.rejected", actor=source, outcome="rejected",
                               detail=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=400)
        deps.intake.submit(finding)  # ignored ones are recorded too
        skip = skip_reason(finding, policy)
        if skip:
            return JSONResponse({"status": "ignored", "reason": skip, "finding": finding.id},
                                status_code=202)
        return JSONResponse({"status": "accepted", "finding": finding.id,
                             "instance": finding.instance_id or None,
                             "sample": finding.sample}, status_code=202)

    @api.post("/aws/guardduty")
    async def guardduty(request: Request) -> Response:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.intake_token}"
        if not settings.intake_token or not hmac.compare_digest(given.encode(),
                                                                expected.encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        parsed = await _json_body(request, MAX_FINDING_BODY)
        if isinstance(parsed, Response):
            return parsed
        return await run_in_threadpool(accept, parsed, "eventbridge")

    def sns(parsed: Any) -> Response:
        try:
            message = verifier.check(parsed)
        except SnsRejected as exc:
            deps.engine.record(action="sns.rejected", actor="sns", outcome="rejected",
                               detail=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=403)
        if message.type == "SubscriptionConfirmation":
            return confirm(message)
        if message.type == "UnsubscribeConfirmation":
            deps.engine.record(action="sns.unsubscribed", actor="sns", outcome="noted",
                               detail=f"{message.topic_arn} unsubscribed irbot")
            return JSONResponse({"status": "noted"}, status_code=200)
        try:
            inner = json.loads(message.message)
        except (ValueError, RecursionError):
            deps.engine.record(action="finding.rejected", actor="sns", outcome="rejected",
                               detail=f"SNS message {message.message_id} is not JSON")
            return JSONResponse({"error": "the SNS Message is not JSON"}, status_code=400)
        return accept(inner, "sns")

    def confirm(message: SnsMessage) -> Response:
        try:
            verifier.confirm(message)
        except SnsRejected as exc:  # bad input, not a failure: no 5xx
            deps.engine.record(action="sns.subscribe", actor="sns", outcome="rejected",
                               detail=f"{message.topic_arn}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=400)
        except (OSError, ValueError) as exc:
            deps.engine.record(action="sns.subscribe", actor="sns", outcome="failed",
                               detail=f"{message.topic_arn}: {exc}")
            return JSONResponse({"error": f"could not confirm the subscription: {exc}"},
                                status_code=502)
        deps.engine.record(action="sns.subscribe", actor="sns", outcome="confirmed",
                           detail=message.topic_arn)
        return JSONResponse({"status": "subscribed", "topic": message.topic_arn},
                            status_code=200)

    @api.post("/aws/sns")
    async def sns_route(request: Request) -> Response:
        if not settings.sns_topics:
            return JSONResponse({"error": "no topics are trusted: set IRBOT_SNS_TOPICS"},
                                status_code=403)
        parsed = await _json_body(request, MAX_SNS_BODY)
        if isinstance(parsed, Response):
            return parsed
        # Fetching a certificate and checking a signature block: keep them off the loop.
        return await run_in_threadpool(sns, parsed)
