"""The incident-response playbook: its steps, in the order responders take them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from playbooks.evidence import CAPTURE
from playbooks.flowlogs import FLOWLOGS
from playbooks.harden import HARDEN, HARDEN_IMDS, HARDEN_SSH
from playbooks.investigate import INVESTIGATE
from playbooks.isolate import ISOLATE
from playbooks.lateral import LATERAL
from playbooks.model import Step
from playbooks.rebuild import BACKUPS, REBUILD, RESTORE
from playbooks.release import RELEASE
from playbooks.revoke import REVOKE
from playbooks.snapshot import SNAPSHOT
from playbooks.terminate import TERMINATE

# Opening an incident looks the instance and its role up.
OPEN_PERMISSIONS = ("ec2:DescribeInstances", "iam:GetInstanceProfile")


@dataclass(frozen=True)
class Playbook:
    name: str
    steps: tuple[Step, ...]
    # Steps offered only by another step's result (not in the checklist).
    offered: tuple[Step, ...] = ()

    def get(self, step_id: str) -> Step | None:
        """Return the step (checklist or offered) with this id, or None."""
        return next((s for s in self.steps + self.offered if s.id == step_id), None)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def permissions(self) -> list[str]:
        """Return the union of every step's IAM permissions and opening's, sorted."""
        return sorted({p for step in self.steps + self.offered for p in step.permissions}
                      | set(OPEN_PERMISSIONS))

    def markdown_table(self, gated: frozenset[str]) -> str:
        """Return the README's step table: each step, its approval, what it does in AWS."""
        rows = ["| step | needs approval (default) | what it does in AWS |", "|---|---|---|"]
        for step in self.steps + self.offered:
            offered = " (offered by a result)" if step in self.offered else ""
            rows.append(f"| {step.label}{offered} | {'yes' if step.id in gated else 'no'} "
                        f"| {step.summary} |")
        return "\n".join(rows)

    def iam_policy(self) -> dict[str, object]:
        """Return the IAM policy document irbot's role needs for this playbook."""
        return {
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "IrbotPlaybook",
                "Effect": "Allow",
                "Action": self.permissions(),
                "Resource": "*",
            }],
        }


EC2_COMPROMISE = Playbook(
    name="Compromised EC2 instance",
    steps=(INVESTIGATE, FLOWLOGS, ISOLATE, SNAPSHOT, CAPTURE, REVOKE, LATERAL, TERMINATE, REBUILD,
           HARDEN, RELEASE),
    offered=(BACKUPS, RESTORE, HARDEN_IMDS, HARDEN_SSH),
)
