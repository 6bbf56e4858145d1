"""Reading logs: streaming bytes into lines, and EMR's log layout in S3."""
