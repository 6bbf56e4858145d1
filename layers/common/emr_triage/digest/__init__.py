"""The weekly failure digest: the figures of a period, and the chart image posted with them."""
