"""Slack listeners: parse, ack, hand over to the engine. No boto3, no SQL here."""
