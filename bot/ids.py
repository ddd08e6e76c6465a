"""Action and block ids carried by irbot's messages, in one place."""

from __future__ import annotations

import enum


class ActionId(enum.StrEnum):
    # A step button's action_id is STEP_PREFIX + the step id.
    STEP_PREFIX = "step:"


class BlockId(enum.StrEnum):
    STEP_BUTTONS = "irbot-steps"
    CHECKLIST = "irbot-checklist"
