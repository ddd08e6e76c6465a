"""The app: settings, the FastAPI + Bolt factory, the CLI, Block Kit and posting to Slack."""
