"""Block Kit as terminal text: headers, sections, fields, context, buttons as `[Isolate]`."""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Mapping
from typing import Any

WIDTH = 96
_EMOJI = {
    "white_check_mark": "✔", "x": "✘", "hourglass_flowing_sand": "⏳", "hourglass": "⌛",
    "white_square": "☐", "raised_hand": "✋", "no_entry": "⛔", "warning": "⚠",
    "rotating_light": "🚨", "mag": "🔎", "checkered_flag": "🏁", "lock": "🔒",
    "camera": "📷", "robot_face": "🤖", "stopwatch": "⏱", "octagonal_sign": "🛑",
    "grey_question": "?", "large_green_circle": "●", "red_circle": "●", "paperclip": "📎",
}


def plain(text: str, names: Mapping[str, str]) -> str:
    """Turn Slack mrkdwn into readable text: mentions, links, emoji, entities."""
    text = re.sub(r"<@([A-Z0-9]+)>", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = re.sub(r"<#([A-Z0-9]+)(\|[^>]*)?>", lambda m: "#" + (m.group(2) or "|channel")[1:],
                  text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = re.sub(r":([a-z][a-z0-9_+-]*):", lambda m: _EMOJI.get(m.group(1), m.group(0)), text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    return html.unescape(text)


def _text(obj: Any, names: Mapping[str, str]) -> str:
    if isinstance(obj, dict):
        return plain(str(obj.get("text", "")), names)
    return ""


def _wrap(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    for raw in text.splitlines() or [""]:
        body = raw.lstrip()
        lead = raw[: len(raw) - len(body)]
        lines += textwrap.wrap(body, width=WIDTH - len(indent) - len(lead),
                               initial_indent=indent + lead,
                               subsequent_indent=indent + lead + "  ") or [indent]
    return lines


def _element(element: dict[str, Any], names: Mapping[str, str]) -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[{_text(element.get('text'), names)}]"
    if kind in ("static_select", "external_select"):
        return f"[{_text(element.get('placeholder'), names) or 'choose'} ▾]"
    return ""


def render(message: Mapping[str, Any], names: Mapping[str, str], indent: str = "") -> str:
    """Return the message as lines of text (its blocks, or its text when it has none)."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not blocks:
        return "\n".join(_wrap(plain(str(message.get("text", "")), names), indent))
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"), names)
            out += [indent + title.upper(), indent + "=" * min(len(title), WIDTH - len(indent))]
        elif kind == "section":
            if block.get("text"):
                out += _wrap(_text(block["text"], names), indent)
            for field in block.get("fields", []):
                label, _, value = _text(field, names).partition("\n")
                out += _wrap(f"{label + ':':<18} {value}", indent)
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and _element(accessory, names):
                out.append(indent + _element(accessory, names))
        elif kind == "context":
            out += _wrap(" · ".join(_text(e, names) for e in block.get("elements", [])),
                         indent + "  ")
        elif kind == "divider":
            out.append(indent + "─" * (WIDTH - len(indent)))
        elif kind == "actions":
            shown = [s for s in (_element(e, names) for e in block.get("elements", [])) if s]
            out += _wrap(" ".join(shown), indent)
        elif kind == "image":
            out.append(indent + f"[image: {block.get('alt_text', '')}]")
    return "\n".join(out)
