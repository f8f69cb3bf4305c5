"""cytodask.core."""
