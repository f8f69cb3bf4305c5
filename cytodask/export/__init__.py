"""cytodask.export."""
