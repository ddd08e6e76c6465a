"""The post-incident report of a scripted incident, checked against its audit trail; and
`irbot demo` end to end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from bot.cli import main
from bot.deps import Deps
from storage import audit, evidence
from tests.aws_world import World
from tests.conftest import open_incident
from tests.harness import ALICE, BOB, CHANNEL, SlackDriver, blocks_text


def _wait_step(driver: SlackDriver, ts: str, text: str) -> None:
    driver.slack.wait_for(lambda: any(text in m.get("text", "") or text in blocks_text(m)
                                      for m in driver.slack.thread_messages(CHANNEL, ts)))


def _approve(driver: SlackDriver, ts: str, step_label: str, user: str) -> None:
    (key, _message), = driver.slack.wait_for(lambda: [
        (k, m) for k, m in driver.slack.messages.items()
        if m.get("thread_ts") == ts and f"{step_label} awaits approval" in m.get("text", "")])
    driver.click("approval:approve", message_ts=key[1], user=user)


def _scripted_incident(driver: SlackDriver, deps: Deps, world: World) -> str:
    ts, _root = open_incident(driver, world, reason="C2 beaconing")
    driver.click("step:isolate", message_ts=ts, user=ALICE)
    _wait_step(driver, ts, "is isolated")
    driver.click("step:snapshot", message_ts=ts, user=BOB)
    _wait_step(driver, ts, "Every snapshot is completed")
    driver.click("step:evidence", message_ts=ts, user=ALICE)
    _wait_step(driver, ts, "Evidence captured")
    incident_id = deps.engine.open_incidents()[0].id
    driver.slack.wait_for(lambda: {"metadata", "console-output"} <= deps.engine.facts(
        incident_id).evidence_kinds)
    driver.click("step:terminate", message_ts=ts, user=ALICE)
    _approve(driver, ts, "Terminate", BOB)
    _wait_step(driver, ts, "is terminating")
    driver.click("incident:close", message_ts=ts, user=ALICE)
    return ts


def test_report_matches_the_audit_trail_and_is_posted_on_close(
        driver: SlackDriver, deps: Deps, world: World, database_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ts = _scripted_incident(driver, deps, world)
    files = driver.slack.wait_for(lambda: [f for f in driver.slack.files.values()
                                           if str(f.get("filename", "")).endswith("report.md")
                                           and f.get("content")])
    (posted,) = files
    assert posted["thread_ts"] == ts
    report = posted["content"].decode()
    incident_id = re.search(r"# Post-incident report: (IR-\d{4}-\d{4})", report).group(1)
    rows = audit.events_for(deps.sessions, incident_id=incident_id)
    timeline = report.split("## Timeline", 1)[1].split("## Evidence manifest", 1)[0]
    lines = [line for line in timeline.splitlines() if line.startswith("| 20")]
    # Every audit row up to the close is in the timeline, in order, with its UTC time.
    closed_at = next(r for r in rows if r.action == "incident.close")
    expected = [r for r in rows if r.seq <= closed_at.seq]
    assert len(lines) == len(expected)
    for line, row in zip(lines, expected, strict=True):
        assert line.startswith(f"| {row.at:%Y-%m-%d %H:%M:%S} UTC |")
        assert row.action in line and row.outcome in line
    # Times: contained at the isolate result, terminated at the terminate result.
    opened = next(r.at for r in rows if r.action == "incident.open")
    isolated = next(r.at for r in rows if r.action == "step.result" and r.step_id == "isolate")
    seconds = int((isolated - opened).total_seconds())
    assert f"to isolation verified): 0 min {seconds:02d} s" in report
    assert "**Time to terminate:** 0 min" in report
    # Evidence manifest: every stored item with its hash.
    for item in evidence.evidence_for(deps.sessions, incident_id=incident_id):
        assert item.sha256 in report
    # Changes and how to undo them.
    for eni in world.eni_ids:
        assert f"modify-network-interface-attribute --network-interface-id {eni}" in report
    assert f"{world.instance_id} terminated" in report and "delete-snapshot" in report
    assert "register-targets" in report and "attach-instances" in report
    # Who took part.
    people = report.split("## Who took part", 1)[1]
    assert (f"@{ALICE}: opened the incident, asked for isolate, asked for evidence, asked "
            "for terminate, closed the incident") in people
    assert f"@{BOB}: asked for snapshot, approved terminate" in people
    # The posted hash is in the audit trail.
    (row,) = driver.slack.wait_for(lambda: [
        r for r in audit.events_for(deps.sessions, incident_id=incident_id)
        if r.action == "report.posted"])
    import hashlib
    assert row.params["sha256"] == hashlib.sha256(posted["content"]).hexdigest()

    # `irbot report` prints the same report (plus the report.posted row, written after).
    monkeypatch.setenv("DATABASE_URL", database_url)
    capsys.readouterr()
    assert main(["report", incident_id]) == 0
    printed = capsys.readouterr().out
    assert printed.split("## Timeline")[0] == report.split("## Timeline")[0]
    assert "report.posted" in printed and "report.posted" not in report
    assert main(["report", "IR-1999-0001"]) == 1
    assert main(["report", "nonsense"]) == 2


@pytest.mark.skipif(os.environ.get("IRBOT_SKIP_DEMO") == "1", reason="demo skipped")
def test_irbot_demo_runs_a_whole_incident() -> None:
    irbot = shutil.which("irbot")
    cmd = [irbot] if irbot else [sys.executable, "-m", "bot.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([*cmd, "demo"], capture_output=True, text=True, timeout=180,
                          env=env)  # its running time is measured in bench/demo_runtime.py
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    for expected in ("HTTP 202", "[Isolate]", "is isolated: 2 interfaces in quarantine",
                     "@bob (a second person) clicks [Approve]", "Approved by @bob",
                     "is terminating", "Replacement i-", "closed by @alice",
                     "Post-incident report", "audit chain OK", "9 of 9 steps succeeded",
                     "before isolation was verified)"):
        assert expected in out, expected
    # The steps happen in the order a team would take them.
    order = [out.index(f"clicks [{label}") for label in (
        "Investigate", "Isolate", "Snapshot", "Capture evidence", "Revoke", "Check lateral",
        "Terminate", "Rebuild", "Harden", "Close incident")]
    assert order == sorted(order)


@pytest.mark.parametrize("seconds, text", [
    (0, "0 min 00 s"), (59.9, "0 min 59 s"), (3 * 60 + 7, "3 min 07 s"),
    (3600 + 62, "1 h 01 min 02 s"), (86400 * 3 + 3600 * 5 + 7, "3 d 05 h 00 min 07 s"),
    (-5, "0 min 00 s"),
])
def test_durations_are_said_plainly(seconds: float, text: str) -> None:
    from playbooks.report import duration_text

    assert duration_text(seconds) == text
