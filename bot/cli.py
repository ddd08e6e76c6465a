"""The `irbot` command: serve, demo, report, audit verify, audit show, iam-policy, steps."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings
from storage import audit
from storage.db import NoDatabase, open_existing, session_factory, shown_url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="irbot", description="Slack incident response bot "
                                     "for compromised EC2 instances")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Slack app over HTTP (or Socket Mode)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--socket", action="store_true",
                       help="receive Slack's requests over Socket Mode (SLACK_APP_TOKEN)")
    serve.add_argument("--log-level", default=os.environ.get("IRBOT_LOG_LEVEL", "info"))
    demo = sub.add_parser("demo", help="run a whole incident on an embedded AWS emulator and "
                          "a local stand-in for Slack (needs the demo extra)")
    demo.add_argument("--pause", action="store_true", help="wait for Enter between steps")
    report = sub.add_parser("report", help="write an incident's post-incident report "
                            "(Markdown)")
    report.add_argument("incident_id")
    report.add_argument("-o", "--output", help="write to this file instead of stdout")
    sub.add_parser("iam-policy", help="print the IAM policy irbot's AWS role needs")
    sub.add_parser("steps", help="print the playbook's steps as a Markdown table")
    audit_cmd = sub.add_parser("audit", help="check or print the audit trail")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain; name the first broken row")
    show = audit_sub.add_parser("show", help="print an incident's audit trail")
    show.add_argument("incident_id")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the irbot command line."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "steps":
        from bot.deps import DEFAULT_APPROVAL_STEPS
        from playbooks.catalog import EC2_COMPROMISE

        print(EC2_COMPROMISE.markdown_table(frozenset(DEFAULT_APPROVAL_STEPS)))
        return 0
    if args.command == "iam-policy":
        from playbooks.catalog import EC2_COMPROMISE

        print(json.dumps(EC2_COMPROMISE.iam_policy(), indent=2))
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "report":
        return _report(args)
    return _audit(args)


def _demo(args: argparse.Namespace) -> int:
    try:
        from bot.demo.run import run_demo
    except ImportError as exc:
        print(f"irbot demo needs the demo extra: pip install -e \".[demo]\" ({exc})",
              file=sys.stderr)
        return 2
    return run_demo(pause=args.pause)


def _database_url() -> str:
    return os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def _sessions() -> sessionmaker[Session] | None:
    """Open irbot's database for the read-only commands (which never create one); None,
    said on stderr, when it is not there."""
    try:
        return session_factory(open_existing(_database_url()))
    except NoDatabase as exc:
        print(f"irbot: {exc}; set DATABASE_URL to the database irbot serve uses",
              file=sys.stderr)
        return None


def _report(args: argparse.Namespace) -> int:
    from playbooks.catalog import EC2_COMPROMISE
    from playbooks.report import build_report

    incident_id = str(args.incident_id).upper()
    if not re.fullmatch(r"IR-\d{4}-\d{4,}", incident_id):
        print(f"irbot: {args.incident_id!r} is not an incident id like IR-2026-0001",
              file=sys.stderr)
        return 2
    sessions = _sessions()
    if sessions is None:
        return 2
    text = build_report(sessions, EC2_COMPROMISE, incident_id)
    if text is None:
        print(f"irbot: there is no incident {incident_id} in {shown_url(_database_url())}",
              file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(socket_mode=args.socket)
    except SettingsError as exc:
        print(f"irbot: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from bot.app import create_app
    from bot.deps import build_deps

    try:
        deps = build_deps(settings)
    except SettingsError as exc:
        print(f"irbot: {exc}", file=sys.stderr)
        return 2
    api = create_app(settings, deps)
    if args.socket:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(api.state.bolt, settings.slack_app_token)
        handler.connect()  # type: ignore[no-untyped-call]  # returns at once; events arrive on the handler's threads
    uvicorn.run(api, host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0


def _audit(args: argparse.Namespace) -> int:
    sessions = _sessions()
    if sessions is None:
        return 2
    if args.audit_command == "verify":
        return verify_audit(sessions)
    return show_audit(sessions, args.incident_id, as_json=args.json)


def verify_audit(sessions: sessionmaker[Session], out: TextIO | None = None) -> int:
    """Check the hash chain and say so; return the exit code."""
    out = out or sys.stdout
    report = audit.verify(sessions)
    if report.ok:
        print(f"audit chain OK: {report.rows} rows verified", file=out)
        return 0
    print(f"audit chain BROKEN at row {report.first_broken_seq}: {report.problem}", file=out)
    return 1


def show_audit(sessions: sessionmaker[Session], incident_id: str, *, as_json: bool = False,
               out: TextIO | None = None) -> int:
    """Print an incident's audit rows; return the exit code."""
    out = out or sys.stdout
    rows = audit.events_for(sessions, incident_id=incident_id)
    if not rows:
        print(f"no audit rows for {incident_id}", file=sys.stderr)
        return 1
    for row in rows:
        if as_json:
            print(json.dumps({
                "seq": row.seq, "at": audit.utc_text(row.at), "actor": row.actor,
                "approver": row.approver, "action": row.action, "step": row.step_id,
                "outcome": row.outcome, "detail": row.detail, "request_ids": row.request_ids,
                "params": row.params, "hash": row.hash,
            }, sort_keys=True), file=out)
        else:
            step = f" [{row.step_id}]" if row.step_id else ""
            ids = f" aws={','.join(row.request_ids)}" if row.request_ids else ""
            print(f"{row.seq:>6} {audit.utc_text(row.at)}Z {row.actor:<12} {row.action}{step} "
                  f"{row.outcome}: {row.detail}{ids}", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
