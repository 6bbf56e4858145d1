"""Slack: building messages (pure), rendering them for a terminal, and delivering them."""
