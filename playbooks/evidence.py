"""The Capture evidence step: metadata, console output and screenshot, kept and hashed."""

from __future__ import annotations

from aws.evidence import collect_evidence
from playbooks.model import Artifact, Step, StepContext, StepOutcome
from storage.models import utcnow

PERMISSIONS = ("ec2:DescribeInstances", "ec2:DescribeInstanceAttribute",
               "ec2:GetConsoleOutput", "ec2:GetConsoleScreenshot",
               "ec2:DescribeSecurityGroups", "iam:GetInstanceProfile", "s3:PutObject")


def run_capture(ctx: StepContext) -> StepOutcome:
    """Collect the instance's evidence; a missing screenshot never blocks the rest."""
    now = utcnow()
    stamp = f"{now:%Y%m%dT%H%M%SZ}"
    iid = ctx.incident.instance_id
    got = collect_evidence(ctx.aws, ctx.log, instance_id=iid, collected_at=now)
    artifacts = [Artifact("metadata", f"{iid}-metadata-{stamp}.json", got.metadata,
                          f"Instance metadata of {iid}")]
    if got.console_output is not None:
        artifacts.append(Artifact("console-output", f"{iid}-console-{stamp}.txt",
                                  got.console_output, f"Console output of {iid}"))
    if got.screenshot is not None:
        artifacts.append(Artifact("screenshot", f"{iid}-screenshot-{stamp}.jpg",
                                  got.screenshot, f"Console screenshot of {iid}"))
    lines = [f"{a.title}: {a.filename}, {len(a.content):,} bytes" for a in artifacts]
    lines += [f"{what}: {why}" for what, why in got.unavailable.items()]
    kinds = [a.kind for a in artifacts]
    ok = "metadata" in kinds and "console-output" in kinds
    headline = (f"Evidence captured for {iid}: {', '.join(kinds)}" if ok else
                f"Evidence of {iid} is incomplete: {', '.join(got.unavailable) or 'unknown'}")
    return StepOutcome(ok=ok, headline=headline, lines=lines, artifacts=artifacts,
                       result={"kinds": kinds, "unavailable": got.unavailable})


CAPTURE = Step(
    id="evidence",
    label="Capture evidence",
    title="Capture metadata, console output and screenshot",
    summary=("Saves the full instance record, its attributes (user data included), profile, "
             "groups and tags, the decoded console output and a console screenshot where "
             "the API gives one; each file hashed (SHA-256), attached here and written to "
             "IRBOT_EVIDENCE_BUCKET when set."),
    running_text="Capturing evidence…",
    run=run_capture,
    permissions=PERMISSIONS,
)
