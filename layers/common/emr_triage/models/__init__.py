"""Pydantic models: declarative, no I/O."""
