"""A GuardDuty storm through the running app: N findings for M instances, posted over HTTP
to `POST /aws/guardduty` of irbot served by uvicorn, with moto for AWS and the Slack
stand-in limiting chat.postMessage and chat.update to L calls a second (429 beyond).

    python bench/finding_storm.py [--findings 500] [--instances 20] [--limit 20]

Target (issue 5): every finding recorded and linked, one thread per instance, root updates
at most about once a second per incident, every 429 retried after its Retry-After.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import boto3
from moto import mock_aws

from bot.demo.run import Demo
from bot.demo.world import REGION, finding
from storage.models import Finding


def storm(findings: int, instances: int, limit: int) -> None:
    with tempfile.TemporaryDirectory() as workdir, mock_aws():
        demo = Demo(io.StringIO(), False, Path(workdir))
        try:
            ec2 = boto3.client("ec2", region_name=REGION)
            subnet = ec2.describe_instances(InstanceIds=[demo.world.instance_id])[
                "Reservations"][0]["Instances"][0]["SubnetId"]
            ids = [i["InstanceId"] for i in ec2.run_instances(
                ImageId=demo.world.golden_ami, MinCount=instances, MaxCount=instances,
                SubnetId=subnet)["Instances"]]
            demo.slack.throttles = {"chat.postMessage": (limit, 1.0),
                                    "chat.update": (limit, 1.0)}
            started = time.monotonic()
            for n in range(findings):
                world = dataclasses.replace(demo.world, instance_id=ids[n % instances])
                event = finding(world, finding_id=f"storm-{n:04d}",
                                kind="Recon:EC2/PortProbeUnprotectedPort", severity=5.0,
                                title=f"Unprotected port probed ({n})",
                                description="A port is being probed.", action={},
                                minutes_ago=5)
                answer = demo.http.post("/aws/guardduty", json=event,
                                        headers={"Authorization": f"Bearer {demo.token}"})
                assert answer.status_code == 202, answer.text
            posted = time.monotonic() - started
            while True:
                with demo.deps.sessions() as session:
                    linked = session.query(Finding).filter(
                        Finding.incident_id.isnot(None)).count()
                if linked == findings:
                    break
                time.sleep(0.1)
            demo.deps.intake.wait_idle(120)
            settled = time.monotonic() - started
            roots = {i.root_ts for i in demo.deps.engine.open_incidents()}
            updates: dict[str, int] = defaultdict(int)
            for call in demo.slack.calls:
                if call.method.startswith("chat.update") and call.args.get("ts") in roots:
                    updates[str(call.args["ts"])] += 1
            refused = sum(c.method.endswith("#429") for c in demo.slack.calls)
            print(f"{findings} findings for {instances} instances, Slack limited to {limit}/s "
                  f"per method: posted in {posted:.1f} s, all linked and rendered after "
                  f"{settled:.1f} s; {len(roots)} threads; root updates per incident: max "
                  f"{max(updates.values())}, mean {sum(updates.values()) / len(roots):.1f} "
                  f"(at most {settled:.0f} if once a second); {refused} calls answered 429 "
                  "and retried")
        finally:
            demo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", type=int, default=500)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": REGION})
    storm(args.findings, args.instances, args.limit)


if __name__ == "__main__":
    main()
