"""Build the app's dependencies once, from settings: database, AWS, Slack, engine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from aws.session import AwsFactory
from bot.access import Directory, SlackAccess
from bot.settings import Settings, SettingsError
from bot.slack_notifier import SlackNotifier
from handlers.sns import fetch_https
from playbooks.catalog import EC2_COMPROMISE, Playbook
from playbooks.engine import Engine
from playbooks.findings import FindingPolicy
from playbooks.intake import AutoIsolate, Intake
from storage.db import create_schema, make_engine, session_factory


@dataclass
class Deps:
    db: DbEngine
    sessions: sessionmaker[Session]
    slack: WebClient
    notifier: SlackNotifier
    aws: AwsFactory
    engine: Engine
    access: SlackAccess
    intake: Intake
    # How irbot fetches SNS certificates and confirmation links (a test's own in tests).
    fetch_url: Callable[[str], bytes] = fetch_https


log = logging.getLogger(__name__)

# Steps that wait for a second person unless IRBOT_APPROVAL_REQUIRED says otherwise; the
# ones the playbook does not have (yet) are skipped.
DEFAULT_APPROVAL_STEPS = ("revoke-credentials", "terminate", "rebuild", "release")


def approval_policy(settings: Settings, playbook: Playbook) -> frozenset[str]:
    """Return the step ids that need approval; refuse unknown steps, warn of no approvers."""
    known = {step.id for step in playbook}
    if settings.approval_required is None:
        gated = frozenset(s for s in DEFAULT_APPROVAL_STEPS if s in known)
    else:
        unknown = sorted(set(settings.approval_required) - known)
        if unknown:
            raise SettingsError(
                f"IRBOT_APPROVAL_REQUIRED names unknown steps {', '.join(unknown)} "
                f"(steps: {', '.join(sorted(known))}; or 'none')")
        gated = frozenset(settings.approval_required)
    if gated and not settings.approvers:
        # Containment must still work: these steps are refused with this reason instead.
        log.warning("IRBOT_APPROVERS is empty: %s need approval and will be refused until "
                    "approvers are listed (U... or S... ids)", ", ".join(sorted(gated)))
    return gated


def slack_client(settings: Settings) -> WebClient:
    """Return a Web API client for SLACK_API_URL that waits out 429s and retries drops."""
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                       timeout=15)
    # Slack asks to honour Retry-After rather than give up; in a finding storm many threads
    # wait out the same window, so allow for several rounds.
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=10))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


def build_deps(settings: Settings, *, aws: AwsFactory | None = None) -> Deps:
    """Wire the database, AWS, Slack and the engine together."""
    db = make_engine(settings.database_url)
    create_schema(db)
    sessions = session_factory(db)
    gated = approval_policy(settings, EC2_COMPROMISE)
    slack = slack_client(settings)
    notifier = SlackNotifier(slack, channel=settings.channel, gated=gated)
    access = SlackAccess(Directory(slack), responders=settings.responders,
                         approvers=settings.approvers, allow_everyone=settings.allow_everyone)
    threading.Thread(target=access.warm, name="groups-warm", daemon=True).start()
    aws = aws or AwsFactory(default_region=settings.aws_region,
                            role_arn=settings.assume_role_arn,
                            account_roles=dict(settings.account_roles))
    # Loading the service models takes a moment: do it beside start-up, not in the
    # first containment.
    threading.Thread(target=aws.for_region().warm, name="aws-warm", daemon=True).start()
    engine = Engine(sessions=sessions, aws=aws, notifier=notifier, playbook=EC2_COMPROMISE,
                    access=access, approval_steps=gated,
                    approval_ttl=timedelta(seconds=settings.approval_ttl_seconds),
                    evidence_bucket=settings.evidence_bucket,
                    follow_up_every=settings.snapshot_poll_seconds,
                    step_config={"quarantine_profile": settings.quarantine_profile,
                                 "ssm_wait_seconds": str(settings.ssm_wait_seconds),
                                 "golden_ami": settings.golden_ami})
    intake = Intake(engine, policy=FindingPolicy(
        min_severity=settings.min_severity, include=settings.finding_types_include,
        exclude=settings.finding_types_exclude, non_ec2=settings.non_ec2_findings),
        auto=AutoIsolate(types=settings.auto_isolate,
                         min_severity=settings.auto_isolate_min_severity,
                         delay=float(settings.auto_isolate_delay_seconds)))
    intake.resume()  # countdowns a restart left pending
    return Deps(db=db, sessions=sessions, slack=slack, notifier=notifier, aws=aws,
                engine=engine, access=access, intake=intake)
