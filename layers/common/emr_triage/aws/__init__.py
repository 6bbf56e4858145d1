"""Adapters to AWS. Only these modules touch boto3; each translates ClientError into our exceptions."""
