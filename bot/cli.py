"""The `irbot` command: serve, audit verify, audit show."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings
from storage import audit
from storage.db import create_schema, make_engine, session_factory


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
    return _audit(args)


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
    engine = make_engine(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    create_schema(engine)
    sessions = session_factory(engine)
    if args.audit_command == "verify":
        report = audit.verify(sessions)
        if report.ok:
            print(f"audit chain OK: {report.rows} rows verified")
            return 0
        print(f"audit chain BROKEN at row {report.first_broken_seq}: {report.problem}")
        return 1
    rows = audit.events_for(sessions, incident_id=args.incident_id)
    if not rows:
        print(f"no audit rows for {args.incident_id}", file=sys.stderr)
        return 1
    for row in rows:
        if args.json:
            print(json.dumps({
                "seq": row.seq, "at": audit.utc_text(row.at), "actor": row.actor,
                "approver": row.approver, "action": row.action, "step": row.step_id,
                "outcome": row.outcome, "detail": row.detail, "request_ids": row.request_ids,
                "params": row.params, "hash": row.hash,
            }, sort_keys=True))
        else:
            step = f" [{row.step_id}]" if row.step_id else ""
            ids = f" aws={','.join(row.request_ids)}" if row.request_ids else ""
            print(f"{row.seq:>6} {audit.utc_text(row.at)}Z {row.actor:<12} {row.action}{step} "
                  f"{row.outcome}: {row.detail}{ids}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
