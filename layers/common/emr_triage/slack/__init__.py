"""Delivering messages to Slack: the Web API (slack-sdk WebClient), an incoming webhook, the console."""
