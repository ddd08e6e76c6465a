"""Action and block ids carried by irbot's messages, in one place."""

from __future__ import annotations

import enum


class ActionId(enum.StrEnum):
    # A step button's action_id is STEP_PREFIX + the step id.
    STEP_PREFIX = "step:"
    CLOSE = "incident:close"
    CANCEL_AUTO = "policy:cancel"
    APPROVE = "approval:approve"
    DENY = "approval:deny"
    ADD_REASON = "approval:reason"
    REASON_INPUT = "reason"
    ANSWER_INPUT = "answer"
    # Buttons a step's result offers: FOLLOW_UP_PREFIX + the action ("open-incident").
    FOLLOW_UP_PREFIX = "followup:"


class ViewId(enum.StrEnum):
    REASON = "approval-reason"
    QUESTION = "step-question"


class BlockId(enum.StrEnum):
    STEP_BUTTONS = "irbot-steps"
    CHECKLIST = "irbot-checklist"
    APPROVAL_BUTTONS = "irbot-approval"
    REASON = "reason"
    FOLLOW_UPS = "irbot-follow-ups"
    CHOICE = "irbot-choice"
    ANSWER = "answer"
