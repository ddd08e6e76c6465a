"""`irbot demo`: a whole incident on an embedded AWS emulator and a stand-in for Slack."""
