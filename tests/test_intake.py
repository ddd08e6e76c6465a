"""Finding storms are coalesced; the auto-isolation policy counts down and can be cancelled."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from bot.deps import Deps
from playbooks.coalesce import Coalescer
from playbooks.intake import Intake
from storage.models import AuditEvent, Countdown, Finding, StepRun, utcnow
from tests.aws_world import AMI, World, group_by_name, interface_groups
from tests.guardduty_events import TOKEN, ec2_event, post_finding
from tests.harness import ALICE, CHANNEL, MALLORY, SlackDriver

AUTO = {"IRBOT_INTAKE_TOKEN": TOKEN, "IRBOT_AUTO_ISOLATE": "Backdoor:EC2/*,CryptoCurrency:*",
        "IRBOT_AUTO_ISOLATE_MIN_SEVERITY": "7"}


def test_coalescer_runs_once_per_interval_for_a_burst() -> None:
    runs: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def work(key: str) -> None:
        with lock:
            runs[key].append(time.monotonic())

    coalescer = Coalescer(work, interval=0.3)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        coalescer.ask("a")
        coalescer.ask("b")
        time.sleep(0.005)
    assert coalescer.wait_idle(5)
    for key in ("a", "b"):
        times = runs[key]
        assert 3 <= len(times) <= 5, times  # ~1 s of asks at one run per 0.3 s
        assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))
        assert times[-1] >= start + 0.9  # the last ask is served


def test_coalescer_never_overlaps_a_slow_run() -> None:
    """Work slowed by Slack's Retry-After must not pile up concurrent runs of one key."""
    spans: list[tuple[float, float]] = []
    inside = threading.Semaphore(1)

    def slow(_key: str) -> None:
        assert inside.acquire(blocking=False), "two runs of one key at once"
        began = time.monotonic()
        time.sleep(0.4)
        spans.append((began, time.monotonic()))
        inside.release()

    coalescer = Coalescer(slow, interval=0.2)
    start = time.monotonic()
    while time.monotonic() - start < 1.2:
        coalescer.ask("a")
        time.sleep(0.01)
    asked_last = time.monotonic()
    assert coalescer.wait_idle(5)
    assert len(spans) >= 2
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended + 0.19  # the interval counts from the end of the last run
    assert spans[-1][0] >= asked_last - 0.45  # the last ask, made mid-run, was served


@pytest.fixture
def app_extra_env(request: pytest.FixtureRequest) -> dict[str, str]:
    delay = getattr(request, "param", "1")
    return {**AUTO, "IRBOT_AUTO_ISOLATE_DELAY": delay}


def _countdown(driver: SlackDriver) -> tuple[str, str, dict[str, Any]]:
    ts, _root = driver.wait_root()
    (key, message), = driver.slack.wait_for(lambda: [
        (k, m) for k, m in driver.slack.messages.items()
        if "unless cancelled" in str(m.get("text", ""))])
    return ts, key[1], message


def test_a_matching_finding_isolates_after_the_countdown(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    assert post_finding(driver.http, ec2_event(world.instance_id, sample=False)
                        ).status_code == 202
    ts, _countdown_ts, message = _countdown(driver)
    assert "Isolating in 1 s unless cancelled" in message["text"]
    result = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts) if "is isolated" in m["text"]])
    assert result
    quarantine = group_by_name(clients["ec2"], world.vpc_id, "irbot-quarantine")["GroupId"]
    for eni in world.eni_ids:
        assert interface_groups(clients["ec2"], eni) == [quarantine]
    with deps.sessions() as session:
        run = session.query(StepRun).filter_by(step_id="isolate").one()
        actions = [(e.action, e.actor, e.outcome) for e in session.query(AuditEvent)]
    assert run.requested_by == "policy"
    assert ("policy.auto_isolate", "policy", "scheduled") in actions
    assert ("step.result", "policy", "succeeded") in actions
    # A second matching finding does not start another countdown.
    post_finding(driver.http, ec2_event(world.instance_id, finding_id="f-2", sample=False))
    driver.slack.wait_for(lambda: len(deps.engine.facts(run.incident_id).runs) >= 1)
    time.sleep(1.5)
    assert sum("unless cancelled" in str(c.args.get("text", ""))
               for c in driver.slack.calls_to("chat.postMessage")) == 1
    assert any("Isolating now" in str(m.get("text", ""))
               for m in driver.slack.messages.values())


@pytest.mark.parametrize("app_extra_env", ["30"], indirect=True)
def test_cancel_stops_the_countdown(driver: SlackDriver, deps: Deps, world: World,
                                   clients: dict[str, Any]) -> None:
    low = ec2_event(world.instance_id, finding_id="f-low", severity=5.0, sample=False)
    post_finding(driver.http, low)  # below the policy's severity: no countdown
    driver.wait_root()
    post_finding(driver.http, ec2_event(world.instance_id, sample=False))
    _ts, countdown_ts, _message = _countdown(driver)
    _response, name = driver.click("policy:cancel", message_ts=countdown_ts, user=MALLORY)
    assert "responders" in driver.wait_reply(name, "Only responders")
    driver.click("policy:cancel", message_ts=countdown_ts, user=ALICE)
    driver.slack.wait_for(lambda: "cancelled* by" in str(
        driver.slack.messages[(CHANNEL, countdown_ts)].get("text", "")))
    _response, again = driver.click(
        "policy:cancel", message_ts=countdown_ts, user=ALICE,
        button={"type": "button", "action_id": "policy:cancel",
                "text": {"type": "plain_text", "text": "Cancel"},
                "value": deps.engine.open_incidents()[0].id})
    assert "already started or was cancelled" in driver.wait_reply(again, "no automatic")
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 0
        cancelled = session.query(AuditEvent).filter_by(action="policy.cancel",
                                                         outcome="cancelled").one()
    assert cancelled.actor == ALICE
    assert interface_groups(clients["ec2"], world.eni_ids[0]) == [world.web_sg]


def test_a_sample_finding_never_isolates_by_itself(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    """GuardDuty's generated samples match the policy's types, but only test the pipeline."""
    assert post_finding(driver.http, ec2_event(world.instance_id, sample=True)
                        ).status_code == 202
    ts, _root = driver.wait_root()
    (note,) = driver.slack.wait_for(lambda: [
        m for m in driver.slack.thread_messages(CHANNEL, ts)
        if "never isolated automatically" in m["text"]])
    assert "[sample]" in note["text"]
    assert deps.intake.wait_idle(10)
    time.sleep(1.5)  # past the 1 s delay a countdown would have had
    assert not any("unless cancelled" in str(m.get("text", ""))
                   for m in driver.slack.messages.values())
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 0
        skipped = session.query(AuditEvent).filter_by(action="policy.auto_isolate").one()
    assert (skipped.actor, skipped.outcome) == ("policy", "skipped")
    assert interface_groups(clients["ec2"], world.eni_ids[0]) == [world.web_sg]


@pytest.mark.parametrize("app_extra_env", ["60"], indirect=True)
def test_a_storm_of_findings_ends_as_one_thread_per_instance(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    """500 findings for 20 instances in a burst, against a Slack that rate-limits."""
    ec2 = clients["ec2"]
    instances = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=AMI, MinCount=20, MaxCount=20, SubnetId=world.subnet_id)["Instances"]]
    slack = driver.slack
    slack.throttles = {"chat.postMessage": (20, 1.0), "chat.update": (20, 1.0)}
    started = time.monotonic()
    for n in range(500):
        instance = instances[n % 20]
        response = post_finding(driver.http, ec2_event(
            instance, finding_id=f"storm-{n:03d}", severity=5.0 + (n % 30) / 10,
            kind="Recon:EC2/PortProbeUnprotectedPort"))
        assert response.status_code == 202
    posted = time.monotonic() - started  # bench/finding_storm.py measures the timings

    def settled() -> bool:
        with deps.sessions() as session:
            linked = session.query(Finding).filter(Finding.incident_id.isnot(None)).count()
        return linked == 500
    slack.wait_for(settled, timeout=120)
    assert deps.intake.wait_idle(60)
    incidents = deps.engine.open_incidents()
    assert sorted(i.instance_id for i in incidents) == sorted(instances)
    roots = {i.root_ts: i for i in incidents}
    assert len(roots) == 20 and None not in roots
    # Every root ends showing all 25 of its findings (15 listed, the rest counted).
    for ts in roots:
        text = str(slack.messages[(CHANNEL, ts)].get("blocks"))
        assert "and 10 more" in text
    # Root updates were coalesced: about one a second per incident, never a burst.
    updates: dict[str, list[float]] = defaultdict(list)
    for call in slack.calls:
        if call.method in ("chat.update", "chat.update#429"):
            updates[str(call.args.get("ts"))].append(call.at)
    elapsed = time.monotonic() - started
    for ts in roots:
        assert len(updates[ts]) <= elapsed + 5, (len(updates[ts]), elapsed)
        made = sorted(updates[ts])  # and never bunched: no three within about a second
        assert all(b - a >= 0.9 for a, b in zip(made, made[2:], strict=False)), " ".join(
            f"{c.method}@{c.at:.2f}" for c in slack.calls if str(c.args.get("ts")) == ts
            or c.args.get("thread_ts") == ts)
    # Slack said 429 and every refused call was made again after Retry-After.
    refused = [c for c in slack.calls if c.method.endswith("#429")]
    assert refused, "the rate limit was never hit: the test does not test retries"
    for call in refused:  # each refused call is made again after Retry-After (1 s)
        method = call.method.removesuffix("#429")
        assert any(c.method.startswith(method) and c.args == call.args
                   and c.at >= call.at + 0.9 for c in slack.calls), call
    # The thread digests, once through, account for every one of the 500 findings.
    told = 0
    for call in slack.calls_to("chat.postMessage"):
        if call.args.get("thread_ts") in roots:
            found = re.match(r":mag: (\d+) new GuardDuty findings", call.args["text"])
            told += int(found.group(1)) if found else 1
    assert told == 500
    print(f"storm: posted in {posted:.1f} s, settled in {elapsed:.1f} s, {len(refused)} 429s, "
          f"root updates per incident max {max(len(updates[t]) for t in roots)}")
    with deps.sessions() as session:
        assert session.query(Finding).count() == 500
        assert session.query(StepRun).count() == 0  # Recon: the policy does not match


def _second_replica(deps: Deps) -> Intake:
    """Another process's intake over the same database (timers of its own)."""
    return Intake(deps.engine, policy=deps.intake.policy, auto=deps.intake.auto)


def test_a_cancel_on_another_replica_stops_the_countdown(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    post_finding(driver.http, ec2_event(world.instance_id, sample=False))
    _countdown(driver)
    incident_id = deps.engine.open_incidents()[0].id
    replica = _second_replica(deps)
    assert replica.cancel_countdown(incident_id=incident_id, actor=ALICE) is None
    replica.close()
    time.sleep(1.5)  # the first replica's timer (1 s) has fired by now
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 0
    assert interface_groups(clients["ec2"], world.eni_ids[0]) == [world.web_sg]
    # One countdown per incident: once cancelled, people are in charge.
    post_finding(driver.http, ec2_event(world.instance_id, finding_id="f-again", sample=False))
    assert deps.intake.wait_idle(10)
    assert sum("unless cancelled" in str(c.args.get("text", ""))
               for c in driver.slack.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("app_extra_env", ["300"], indirect=True)
def test_a_restart_resumes_pending_countdowns_and_drops_stale_ones(
        driver: SlackDriver, deps: Deps, world: World, clients: dict[str, Any]) -> None:
    post_finding(driver.http, ec2_event(world.instance_id, sample=False))
    _countdown(driver)
    incident_id = deps.engine.open_incidents()[0].id
    with deps.sessions.begin() as session:  # irbot was down; the countdown is now due
        session.get(Countdown, incident_id).due_at = utcnow() - timedelta(seconds=5)
    replica = _second_replica(deps)
    assert replica.resume() == 1
    driver.slack.wait_for(lambda: deps.engine.facts(incident_id).runs.get("isolate")
                          and deps.engine.facts(incident_id).runs["isolate"].state
                          == "succeeded")
    replica.close(wait=10)  # the isolation it started finishes before the test does
    assert deps.engine.facts(incident_id).runs["isolate"].requested_by == "policy"
    assert deps.intake.cancel_countdown(incident_id=incident_id, actor=ALICE) is not None


@pytest.mark.parametrize("app_extra_env", ["300"], indirect=True)
def test_a_countdown_long_overdue_is_dropped_not_run(
        driver: SlackDriver, deps: Deps, world: World) -> None:
    post_finding(driver.http, ec2_event(world.instance_id, sample=False))
    _ts, countdown_ts, _message = _countdown(driver)
    incident_id = deps.engine.open_incidents()[0].id
    with deps.sessions.begin() as session:
        session.get(Countdown, incident_id).due_at = utcnow() - timedelta(hours=2)
    replica = _second_replica(deps)
    assert replica.resume() == 0
    replica.close()
    driver.slack.wait_for(lambda: "not run" in str(
        driver.slack.messages[(CHANNEL, countdown_ts)].get("text", "")))
    with deps.sessions() as session:
        assert session.query(StepRun).count() == 0
        assert session.get(Countdown, incident_id).state == "cancelled"
