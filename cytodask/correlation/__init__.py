"""cytodask.correlation."""
