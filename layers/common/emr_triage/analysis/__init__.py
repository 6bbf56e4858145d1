"""Pure log analysis: the failure catalogue, classification, ranking, fingerprints, redaction."""
