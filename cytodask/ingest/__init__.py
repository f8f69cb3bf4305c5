"""cytodask.ingest."""
