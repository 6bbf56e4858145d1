"""emr-triage: failure alerting and log analysis for Apache Spark on Amazon EMR."""

__version__ = "0.1.0"
