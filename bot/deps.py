"""Build the app's dependencies once, from settings: database, AWS, Slack, engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from aws.session import AwsFactory
from bot.settings import Settings
from bot.slack_notifier import SlackNotifier
from playbooks.catalog import EC2_COMPROMISE
from playbooks.engine import Engine
from storage.db import create_schema, make_engine, session_factory


@dataclass
class Deps:
    db: DbEngine
    sessions: sessionmaker[Session]
    slack: WebClient
    notifier: SlackNotifier
    aws: AwsFactory
    engine: Engine


def slack_client(settings: Settings) -> WebClient:
    """Return a Web API client for SLACK_API_URL that waits out 429s and retries drops."""
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                       timeout=15)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


def build_deps(settings: Settings, *, aws: AwsFactory | None = None) -> Deps:
    """Wire the database, AWS, Slack and the engine together."""
    db = make_engine(settings.database_url)
    create_schema(db)
    sessions = session_factory(db)
    slack = slack_client(settings)
    notifier = SlackNotifier(slack, channel=settings.channel)
    aws = aws or AwsFactory(default_region=settings.aws_region)
    # Loading the service models takes a moment: do it beside start-up, not in the
    # first containment.
    threading.Thread(target=aws.for_region().warm, name="aws-warm", daemon=True).start()
    engine = Engine(sessions=sessions, aws=aws, notifier=notifier, playbook=EC2_COMPROMISE)
    return Deps(db=db, sessions=sessions, slack=slack, notifier=notifier, aws=aws, engine=engine)
