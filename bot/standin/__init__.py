"""A local stand-in for Slack: its Web API as an HTTP server, and requests into the app
signed and shaped the way Slack sends them. `irbot demo` runs on it; the tests do too."""
