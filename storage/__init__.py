"""Persistence for incidents, step runs and the audit trail (SQLAlchemy 2; no AWS, no Slack)."""
