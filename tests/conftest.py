"""Shared fixtures: moto (with interfaces reporting their own groups, as AWS does), a fake
Slack, databases (SQLite, and PostgreSQL when IRBOT_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.app import create_app
from bot.deps import Deps, build_deps
from bot.settings import load_settings
from storage.db import create_schema, make_engine, session_factory
from tests.aws_world import World, build_world
from tests.fake_slack import FakeSlack
from tests.harness import SlackDriver, env

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3 at fake credentials so no test can reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture(autouse=True)
def interfaces_report_own_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto reports an interface's groups as the union with the instance's launch groups;
    AWS reports the interface's own. Make moto say what AWS says (DESIGN.md section 4)."""
    monkeypatch.setattr(NetworkInterface, "group_set",
                        property(lambda self: self._group_set))


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def clients(moto: None) -> dict[str, Any]:
    return {name: boto3.client(name, region_name=REGION)
            for name in ("ec2", "autoscaling", "elbv2", "iam")}


@pytest.fixture
def world(clients: dict[str, Any]) -> World:
    return build_world(clients["ec2"], clients["autoscaling"], clients["elbv2"])


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    slack.usergroups = {"S0RESPOND": ["U0CAROL"], "S0APPROVE": ["U0CAROL"]}
    yield slack
    slack.stop()


def _postgres_url() -> str | None:
    return os.environ.get("IRBOT_TEST_DATABASE_URL") or None


DB_PARAMS = ["sqlite"] + (["postgresql"] if _postgres_url() else [])


@pytest.fixture(params=DB_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh database: a SQLite file, or a throwaway schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/irbot.db"
        return
    base = _postgres_url()
    assert base is not None
    url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    create_schema(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    """Settings a test module adds to the app's environment (override per module)."""
    return {}


@pytest.fixture
def app_env(fake_slack: FakeSlack, database_url: str, moto: None,
            monkeypatch: pytest.MonkeyPatch, app_extra_env: dict[str, str]) -> dict[str, str]:
    values = env(fake_slack, database_url, **app_extra_env)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def deps(app_env: dict[str, str]) -> Iterator[Deps]:
    built = build_deps(load_settings())
    yield built
    built.intake.shutdown(10)  # no digest may fire at a stopped fake Slack
    built.db.dispose()


@pytest.fixture
def driver(deps: Deps, fake_slack: FakeSlack) -> Iterator[SlackDriver]:
    api = create_app(load_settings(), deps)
    with TestClient(api) as client:
        yield SlackDriver(http=client, slack=fake_slack)  # type: ignore[arg-type]


def open_incident(driver: SlackDriver, world: World, reason: str = "GuardDuty C&C finding"
          ) -> tuple[str, dict[str, Any]]:
    response, name = driver.command(f"open {world.instance_id} {reason}")
    assert response.status_code == 200
    assert f"Opening an incident for {world.instance_id}" in response.text
    driver.wait_reply(name, "Opened")
    return driver.root()


