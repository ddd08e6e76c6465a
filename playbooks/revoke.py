"""The Revoke credentials step: stop the instance role's stolen sessions working."""

from __future__ import annotations

from aws.credentials import POLICY_NAME, other_holders, profile_of, revoke_sessions, roles_of
from aws.plans import PlannedCall
from playbooks.model import Step, StepContext, StepOutcome
from storage.models import utcnow

PERMISSIONS = ("ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstances",
               "ec2:DisassociateIamInstanceProfile",
               "ec2:ReplaceIamInstanceProfileAssociation", "iam:GetInstanceProfile",
               "iam:PutRolePolicy", "iam:PassRole")

WARNING = ("Every holder of the role is cut off, not only this instance: other instances, "
           "Lambda functions or people using it must re-authenticate.")


def plan_revoke(ctx: StepContext) -> list[PlannedCall]:
    """Say which profile and roles will be cut, and who else holds them."""
    association, profile_arn = profile_of(ctx.aws, ctx.log, ctx.incident.instance_id)
    if not profile_arn:
        return [PlannedCall("-", ctx.incident.instance_id, "no instance profile: nothing to do")]
    roles = roles_of(ctx.aws, ctx.log, profile_arn)
    others = other_holders(ctx.aws, ctx.log, profile_arn=profile_arn,
                           instance_id=ctx.incident.instance_id)
    planned = [PlannedCall("ec2:DisassociateIamInstanceProfile", association,
                           f"detach {profile_arn.rsplit('/', 1)[-1]} (or replace it)")]
    planned += [PlannedCall("iam:PutRolePolicy", role,
                            f"{POLICY_NAME}: deny all to sessions issued before now")
                for role in roles]
    planned.append(PlannedCall(
        "-", "other holders", "ALSO AFFECTED: " + (", ".join(
            f"{o['instance_id']} {o['name']}".strip() for o in others) or "no other running "
            "instance uses this profile")))
    return planned


def run_revoke(ctx: StepContext) -> StepOutcome:
    """Revoke the role's sessions and say who else is affected."""
    done = revoke_sessions(ctx.aws, ctx.log, instance_id=ctx.incident.instance_id,
                           now=utcnow(), quarantine_profile=ctx.config.get(
                               "quarantine_profile", ""))
    if not done.profile_arn:
        return StepOutcome(ok=True, headline=f"{ctx.incident.instance_id} has no instance "
                           "profile: there are no role credentials to revoke",
                           result=done.to_dict())
    lines = [
        f"Instance profile {done.profile_arn}: {done.profile_action or 'NOT detached'}",
        *(f"Role {r}: {POLICY_NAME} denies every session issued before {done.cutoff}"
          for r in done.policies_put),
        WARNING,
        "Other running instances with this profile: " + (", ".join(
            f"{o['instance_id']} ({o['name'] or o['private_ip']})"
            for o in done.other_instances) or "none"),
        *(f"Problem: {e}" for e in done.errors),
    ]
    ok = not done.errors and len(done.policies_put) == len(done.roles)
    headline = (f"Sessions of {', '.join(done.roles)} issued before {done.cutoff} are revoked"
                if ok else "Revocation is INCOMPLETE: read the details")
    return StepOutcome(ok=ok, headline=headline, lines=lines, result=done.to_dict())


REVOKE = Step(
    id="revoke-credentials",
    label="Revoke role sessions",
    title="Revoke the instance role's sessions",
    summary=("Detaches the instance profile (or swaps in IRBOT_QUARANTINE_PROFILE) so no new "
             "credentials are fetched, then puts the inline policy " + POLICY_NAME +
             " denying every session issued before now. " + WARNING),
    running_text="Revoking sessions…",
    run=run_revoke,
    plan=plan_revoke,
    permissions=PERMISSIONS,
    confirm=("Detaches the profile of {instance} and denies every session of its role "
             "issued before now. " + WARNING),
    destructive=True,
    needs_approval=True,
)
