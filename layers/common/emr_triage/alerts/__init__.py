"""Alerts as Slack messages: building them (Block Kit), rendering them for a terminal, and routing them
to a channel. Pure: delivery is in ``slack/``."""
