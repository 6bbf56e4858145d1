"""emr-triage: failure alerting and log analysis for Apache Spark on Amazon EMR."""

import os

__version__ = "0.1.0"

# emr-triage uses no pydantic plugin. Without this, pydantic reads the entry points of every installed
# package when the first model is built (about 20 ms of each cold start and of each command's start-up).
# A value set by whoever runs us wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
