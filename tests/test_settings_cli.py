"""Settings refuse what cannot work, with one line naming the setting; the CLI's audit
commands print and verify the trail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.cli import main
from bot.settings import SettingsError, load_settings
from storage import audit
from storage.db import create_schema, make_engine, session_factory

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-123-456-abc",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "IRBOT_CHANNEL": "C0123ABCD",
    "AWS_REGION": "eu-west-1",
    "IRBOT_RESPONDERS": "U0ALICE,S0TEAM",
}


def test_good_settings_load_with_defaults() -> None:
    settings = load_settings(GOOD)
    assert settings.database_url == "sqlite:///irbot.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.command == "/ir" and settings.aws_region == "eu-west-1"


@pytest.mark.parametrize("name, value, message", [
    ("SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN is not set"),
    ("SLACK_BOT_TOKEN", "xoxb-your-token", "SLACK_BOT_TOKEN still holds a placeholder"),
    ("SLACK_BOT_TOKEN", "xoxp-123", "must be a bot token"),
    ("SLACK_SIGNING_SECRET", "changeme", "SLACK_SIGNING_SECRET still holds a placeholder"),
    ("IRBOT_CHANNEL", "#incidents", "IRBOT_CHANNEL must be a channel id"),
    ("SLACK_API_URL", "ftp://x", "SLACK_API_URL must be an http(s) URL"),
    ("IRBOT_COMMAND", "ir", "IRBOT_COMMAND must look like /ir"),
])
def test_bad_settings_name_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({**GOOD, name: value})


def test_socket_mode_needs_an_app_token() -> None:
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN is not set"):
        load_settings(GOOD, socket_mode=True)
    assert load_settings({**GOOD, "SLACK_APP_TOKEN": "xapp-1-A1-2-abc"},
                         socket_mode=True).slack_app_token.startswith("xapp-")


def test_serve_refuses_to_start_with_one_clear_line(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLACK_", "IRBOT_"))}
    environment.update({**GOOD, "SLACK_SIGNING_SECRET": ""})
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], env=environment,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "irbot: SLACK_SIGNING_SECRET is not set: the signing secret from the Slack app"]


def test_audit_verify_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    monkeypatch.setenv("DATABASE_URL", url)
    engine = make_engine(url)
    create_schema(engine)
    sessions = session_factory(engine)
    audit.append(sessions, action="incident.open", actor="U0ALICE", outcome="succeeded",
                 incident_id="IR-2026-0001", detail="opened")
    audit.append(sessions, action="step.result", actor="U0ALICE", outcome="succeeded",
                 incident_id="IR-2026-0001", step_id="isolate", request_ids=["req-1"])

    assert main(["audit", "verify"]) == 0
    assert "OK: 2 rows" in capsys.readouterr().out
    assert main(["audit", "show", "IR-2026-0001"]) == 0
    shown = capsys.readouterr().out
    assert "incident.open" in shown and "[isolate]" in shown and "aws=req-1" in shown
    assert main(["audit", "show", "IR-2026-0099"]) == 1

    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET detail = 'edited' WHERE seq = 1"))
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at row 1" in capsys.readouterr().out
    engine.dispose()


def test_read_only_commands_never_create_a_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the default: irbot.db right here
    for argv in (["report", "IR-2026-0001"], ["audit", "verify"],
                 ["audit", "show", "IR-2026-0001"]):
        assert main(argv) == 2, argv
        said = capsys.readouterr().err
        assert "there is no database at irbot.db" in said and "set DATABASE_URL" in said
    assert list(tmp_path.iterdir()) == []
    other = tmp_path / "other.db"
    make_engine(f"sqlite:///{other}").connect().close()  # a database, but not irbot's
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    assert main(["audit", "verify"]) == 2
    assert "holds no irbot data" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://irbot:s3cret@127.0.0.1:1/irbot")
    assert main(["audit", "verify"]) == 2
    said = capsys.readouterr().err
    assert "does not answer" in said and "s3cret" not in said


@pytest.mark.parametrize("name, value, message", [
    ("IRBOT_RESPONDERS", "", "IRBOT_RESPONDERS is empty"),
    ("IRBOT_RESPONDERS", "alice", "use Slack user ids"),
    ("IRBOT_APPROVERS", "U0BOB,@carol", "IRBOT_APPROVERS holds '@carol'"),
    ("IRBOT_EXTRA_CHANNELS", "C0A,#x", "IRBOT_EXTRA_CHANNELS holds '#x'"),
    ("IRBOT_APPROVAL_TTL", "soon", "IRBOT_APPROVAL_TTL must be a duration"),
    ("IRBOT_APPROVAL_TTL", "5s", "between 1 minute and 24 hours"),
    ("IRBOT_ALLOW_EVERYONE", "maybe", "IRBOT_ALLOW_EVERYONE must be true or false"),
    ("IRBOT_ASSUME_ROLE_ARN", "my-role", "IRBOT_ASSUME_ROLE_ARN must be an IAM role ARN"),
])
def test_bad_access_settings_name_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({**GOOD, name: value})


def test_everyone_only_on_purpose_and_durations() -> None:
    settings = load_settings({**GOOD, "IRBOT_RESPONDERS": "", "IRBOT_ALLOW_EVERYONE": "true",
                              "IRBOT_APPROVAL_TTL": "45m", "IRBOT_EXTRA_CHANNELS": "C0WAR"})
    assert settings.allow_everyone and settings.approval_ttl_seconds == 45 * 60
    assert settings.channels == ("C0123ABCD", "C0WAR")
    assert load_settings(GOOD).approval_ttl_seconds == 30 * 60


def test_approval_policy_is_checked_against_the_playbook() -> None:
    from bot.deps import approval_policy
    from playbooks.catalog import EC2_COMPROMISE

    # Without approvers the gated steps are refused at request time; start-up goes on so
    # that containment still works.
    assert "terminate" in approval_policy(load_settings(GOOD), EC2_COMPROMISE)
    with_approvers = load_settings({**GOOD, "IRBOT_APPROVERS": "U0BOB"})
    assert approval_policy(with_approvers, EC2_COMPROMISE) == frozenset(
        {"revoke-credentials", "terminate", "release", "rebuild"})
    assert approval_policy(load_settings({**GOOD, "IRBOT_APPROVAL_REQUIRED": "none"}),
                           EC2_COMPROMISE) == frozenset()
    with pytest.raises(SettingsError, match="unknown steps nuke"):
        approval_policy(load_settings({**GOOD, "IRBOT_APPROVAL_REQUIRED": "nuke"}),
                        EC2_COMPROMISE)
    gated = approval_policy(load_settings({**GOOD, "IRBOT_APPROVAL_REQUIRED": "isolate",
                                           "IRBOT_APPROVERS": "U0BOB"}), EC2_COMPROMISE)
    assert gated == frozenset({"isolate"})


def test_serve_refuses_without_responders(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLACK_", "IRBOT_"))}
    environment.update({**GOOD, "IRBOT_RESPONDERS": ""})
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], env=environment,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("irbot: IRBOT_RESPONDERS is empty")


@pytest.mark.parametrize("extra, types, severity", [
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*, CryptoCurrency:*"},
     ("Backdoor:EC2/*", "CryptoCurrency:*"), 7.0),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,min_severity=8.5"}, ("Backdoor:EC2/*",), 8.5),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*, >= 9"}, ("Backdoor:EC2/*",), 9.0),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,severity>=5",
      "IRBOT_AUTO_ISOLATE_MIN_SEVERITY": "5"}, ("Backdoor:EC2/*",), 5.0),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*", "IRBOT_AUTO_ISOLATE_MIN_SEVERITY": "4"},
     ("Backdoor:EC2/*",), 4.0),
])
def test_auto_isolate_takes_types_and_a_minimum_severity(
        extra: dict[str, str], types: tuple[str, ...], severity: float) -> None:
    settings = load_settings({**GOOD, **extra})
    assert settings.auto_isolate == types and settings.auto_isolate_min_severity == severity


@pytest.mark.parametrize("extra, message", [
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,7"}, "write a minimum severity as min_severity=7"),
    ({"IRBOT_AUTO_ISOLATE": "min_severity=7"}, "a minimum severity but no finding types"),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,>=7,>=8"}, "more than one minimum severity"),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,>=11"}, "must be a number from 0 to 10"),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,min_severity=8",
      "IRBOT_AUTO_ISOLATE_MIN_SEVERITY": "6"}, "set one"),
    ({"IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,<5"}, "not a finding type pattern"),
])
def test_bad_auto_isolate_settings_say_why(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({**GOOD, **extra})
