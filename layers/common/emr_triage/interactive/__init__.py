"""The interactive function's Slack side: admitting requests, bolt's listeners, the slash command."""
