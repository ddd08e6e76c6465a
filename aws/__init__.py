"""Every boto3 call irbot makes lives in this package; it knows nothing of Slack."""
