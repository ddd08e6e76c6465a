"""`irbot demo`: the real app between an embedded AWS emulator (moto) and a local stand-in
for Slack. A GuardDuty finding arrives; two scripted responders work through the playbook
by clicking the buttons irbot's messages carry, over signed HTTP, as Slack would send the
clicks. The thread is printed as it unfolds, then the audit trail and its verification."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx
import uvicorn
from moto import mock_aws

from bot.app import create_app
from bot.cli import show_audit, verify_audit
from bot.demo.render import render
from bot.demo.ssm_agent import ssm_agent_on
from bot.demo.world import REGION, DemoWorld, c2_finding, seed, ssh_finding
from bot.deps import Deps, build_deps
from bot.settings import load_settings
from bot.standin.driver import SlackDriver
from bot.standin.slack_api import FakeSlack
from storage import approvals
from storage.models import StepRun, StepState

ALICE, BOB = "U0ALICE", "U0BOB"
CHANNEL = "C0INCIDENTS"
NAMES = {ALICE: "alice", BOB: "bob", "U0IRBOT": "irbot", CHANNEL: "incidents"}
# Who presses which step, in the order a team would; gated steps are approved by the other.
SCRIPT = (
    (ALICE, "investigate"), (ALICE, "isolate"), (BOB, "snapshot"), (ALICE, "evidence"),
    (ALICE, "revoke-credentials"), (BOB, "lateral"), (BOB, "terminate"), (ALICE, "rebuild"),
    (BOB, "harden"),
)
FINAL = (StepState.SUCCEEDED.value, StepState.FAILED.value, StepState.INTERRUPTED.value,
         StepState.DENIED.value, StepState.EXPIRED.value)
THREAD = "  │ "


class Transcript:
    """Prints what the stand-in for Slack received since the last look, as text."""

    def __init__(self, slack: FakeSlack, out: TextIO) -> None:
        self.slack = slack
        self.out = out
        self._calls = 0
        self._replies = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def flush(self) -> None:
        calls = self.slack.calls[self._calls:]
        self._calls += len(calls)
        for call in calls:
            self._show(call.method, call.args)
        replies = self.slack.responses[self._replies:]
        self._replies += len(replies)
        for reply in replies:
            self.say(f"    (only the clicker sees) {render(dict(reply.args), NAMES)}")

    def _show(self, method: str, args: dict[str, Any]) -> None:
        if method == "chat.postMessage" and not args.get("thread_ts"):
            self.say(f"\n#incidents · irbot posts:\n{render(args, NAMES, '  ')}\n")
        elif method == "chat.postMessage":
            self.say(f"{THREAD}irbot:\n{render(args, NAMES, THREAD + '  ')}\n{THREAD}")
        elif method == "chat.update" and not self._is_root(args):
            self.say(f"{THREAD}(message updated)\n{render(args, NAMES, THREAD + '  ')}\n{THREAD}")
        elif method == "files.completeUploadExternal":
            self.say(f"{THREAD}📎 {args.get('initial_comment', 'a file')}")
        elif method == "chat.postEphemeral":
            who = NAMES.get(str(args.get("user")), "someone")
            self.say(f"    (only @{who} sees) {render(args, NAMES)}")
        elif method == "views.open":
            self.say("    (a modal opens: the reason for the request is optional; "
                     "the demo skips it)")

    def _is_root(self, args: dict[str, Any]) -> bool:
        message = self.slack.messages.get((str(args.get("channel")), str(args.get("ts"))))
        return message is not None and not message.get("thread_ts")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo timed out waiting for {what}")
        time.sleep(0.05)


def _settle(slack: FakeSlack, quiet: float = 0.4) -> None:
    """Wait until the app has said nothing to Slack for `quiet` seconds."""
    count, since = len(slack.calls), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.05)
        if len(slack.calls) != count:
            count, since = len(slack.calls), time.monotonic()


class Demo:
    """One scripted incident: the world, the app, the stand-in, and the two responders."""

    def __init__(self, out: TextIO, pause: bool, workdir: Path) -> None:
        self.out = out
        self.pause = pause
        self.slack = FakeSlack(bot_user="U0IRBOT").start()
        self.show = Transcript(self.slack, out)
        self.world: DemoWorld = seed()
        self.token = secrets.token_urlsafe(24)
        secret = secrets.token_hex(16)
        self.settings = load_settings({
            "SLACK_BOT_TOKEN": "xoxb-irbot-demo", "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": self.slack.api_url, "IRBOT_CHANNEL": CHANNEL,
            "AWS_REGION": REGION, "IRBOT_RESPONDERS": f"{ALICE},{BOB}",
            "IRBOT_APPROVERS": f"{ALICE},{BOB}", "IRBOT_INTAKE_TOKEN": self.token,
            "DATABASE_URL": f"sqlite:///{workdir}/irbot-demo.db",
            "IRBOT_GOLDEN_AMI": self.world.golden_ami,
            "IRBOT_EVIDENCE_BUCKET": self.world.bucket,
            "IRBOT_SNAPSHOT_POLL_SECONDS": "1", "IRBOT_SSM_WAIT_SECONDS": "10",
        })
        self.deps: Deps = build_deps(self.settings)
        port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(self.settings, self.deps), host="127.0.0.1", port=port,
            log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="irbot-demo", daemon=True)
        self.thread.start()
        _wait("irbot to start", lambda: self.server.started)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15)
        self.driver = SlackDriver(http=self.http, slack=self.slack, secret=secret,
                                  channel=CHANNEL)
        self.incident_id = ""

    def close(self) -> None:
        self.deps.intake.shutdown(10)
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)
        self.slack.stop()
        self.deps.db.dispose()

    def beat(self, text: str) -> None:
        """Announce what happens next (and wait for Enter with --pause)."""
        self.show.flush()
        self.show.say(f"\n▶ {text}")
        if self.pause:
            try:
                input("  (Enter to go on) ")
            except EOFError:  # no terminal to wait on: go on without pausing
                self.pause = False

    def run(self) -> int:
        started = time.monotonic()
        w = self.world
        self.show.say(f"irbot demo: AWS account {w.account_id} ({REGION}) is emulated by "
                      "moto; Slack is a local stand-in.")
        self.show.say(f"Seeded VPC {w.vpc_id}: shop-web-1 {w.instance_id} (2 interfaces, 2 "
                      "volumes, role shop-web-role, SSH open to the world) and "
                      + ", ".join(f"{n} {i}" for n, i in w.neighbours.items()) + ".")
        self.beat("GuardDuty sends a finding to POST /aws/guardduty (EventBridge API "
                  "destination)")
        answer = self.http.post("/aws/guardduty", json=c2_finding(w),
                                headers={"Authorization": f"Bearer {self.token}"})
        self.show.say(f"  HTTP {answer.status_code} {answer.text}")
        ts, _root = self.driver.wait_root(timeout=20)
        incident = _wait("the incident", lambda: self.deps.engine.open_incidents())[0]
        self.incident_id = incident.id
        _settle(self.slack)
        self.beat("A second finding for the same instance joins its thread")
        self.http.post("/aws/guardduty", json=ssh_finding(w),
                       headers={"Authorization": f"Bearer {self.token}"})
        _wait("the second finding", lambda: len(self.slack.thread_messages(CHANNEL, ts)) >= 2)
        _settle(self.slack)
        results = [self.step(ts, user, step_id, n)
                   for n, (user, step_id) in enumerate(SCRIPT, start=1)]
        self.beat("@alice clicks [Close incident]")
        self.driver.click("incident:close", message_ts=ts, user=ALICE)
        _wait("the report", lambda: any(c.method == "files.completeUploadExternal"
                                        and "report" in str(c.args).lower()
                                        for c in self.slack.calls))
        _settle(self.slack)
        self.show.flush()
        self.show.say("\nThe root message at the end:")
        self.show.say(render(self.driver.root()[1], NAMES, "  "))
        self.show.say(f"\nAudit trail (irbot audit show {self.incident_id}):")
        show_audit(self.deps.sessions, self.incident_id, out=self.out)
        self.show.say("\nirbot audit verify:")
        verified = verify_audit(self.deps.sessions, out=self.out)
        report = self.deps.engine.report(self.incident_id) or ""
        summary = report.split("\n## Findings", 1)[0]
        self.show.say(f"\nPost-incident report (irbot report {self.incident_id}), first "
                      f"part:\n\n{summary}")
        failed = [step for step, ok in zip(SCRIPT, results, strict=True) if not ok]
        took = time.monotonic() - started
        self.show.say(f"\nDone in {took:.1f} s: {len(SCRIPT) - len(failed)} of {len(SCRIPT)} "
                      "steps succeeded" + (f"; failed: {', '.join(s for _u, s in failed)}"
                                          if failed else "") + ".")
        return 0 if verified == 0 and not failed else 1

    def step(self, ts: str, user: str, step_id: str, number: int) -> bool:
        """Click a step's button as `user`; approve it as the other responder if it asks."""
        step = self.deps.engine.playbook.get(step_id)
        assert step is not None
        self.beat(f"[{number}/{len(SCRIPT)}] @{NAMES[user]} clicks [{step.label}]")
        self.driver.click(f"step:{step_id}", message_ts=ts, user=user)
        run = _wait(f"{step.label} to finish or ask for approval", lambda: self._run(
            step_id, (*FINAL, StepState.AWAITING_APPROVAL.value)), timeout=45)
        if run.state == StepState.AWAITING_APPROVAL.value:
            approval = _wait("the approval request", lambda: (
                a := approvals.for_run(self.deps.sessions, run_id=run.id)) and a.message_ts
                and a)
            _settle(self.slack)
            other = BOB if user == ALICE else ALICE
            self.beat(f"@{NAMES[other]} (a second person) clicks [Approve]")
            self.driver.click("approval:approve", message_ts=approval.message_ts, user=other)
            run = _wait(f"{step.label} to finish", lambda: self._run(step_id, FINAL),
                        timeout=45)
        if step_id == "snapshot":  # its progress is tracked in the background
            _wait("the snapshots to complete", lambda: self._snapshots_done(), timeout=20)
        _settle(self.slack)
        return bool(run.state == StepState.SUCCEEDED.value)

    def _run(self, step_id: str, states: tuple[str, ...]) -> StepRun | None:
        run = self.deps.engine.facts(self.incident_id).runs.get(step_id)
        return run if run is not None and run.state in states else None

    def _snapshots_done(self) -> bool:
        run = self.deps.engine.facts(self.incident_id).runs.get("snapshot")
        shots = (run.result or {}).get("snapshots", []) if run is not None else []
        return bool(shots) and all(s.get("state") in ("completed", "error") for s in shots)


def run_demo(*, pause: bool = False, out: TextIO = sys.stdout) -> int:
    """Run the demo; return 0 when every step succeeded and the audit chain verifies."""
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                       "AWS_DEFAULT_REGION": REGION})
    with tempfile.TemporaryDirectory(prefix="irbot-demo-") as workdir, mock_aws():
        demo = Demo(out, pause, Path(workdir))
        try:
            with ssm_agent_on(demo.world.instance_id):
                return demo.run()
        except TimeoutError as exc:
            demo.show.flush()
            print(f"\nirbot demo: {exc}", file=sys.stderr)
            return 1
        finally:
            demo.close()
