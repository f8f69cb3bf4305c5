"""cytodask.orchestration."""
